"""Tests of the host-side patcher on real temp trees."""
