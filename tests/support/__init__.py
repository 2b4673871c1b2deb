"""Shared test harnesses (sshd, SMTP, fleets)."""
