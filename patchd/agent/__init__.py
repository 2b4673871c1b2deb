"""The host-side agent: a JSON-lines worker that does an account's file work on its host.

The controller ships this package (with the other stdlib-only modules it needs) to a host as
a zip and runs it with the host's ``python3`` (see :mod:`patchd.agent.package`); requests
and responses travel over the agent's stdin and stdout (see :mod:`patchd.agent.protocol`).

NOTE: everything in this package except :mod:`patchd.agent.package` runs on the hosts and
must stay stdlib-only and compatible with Python 3.8.
"""
