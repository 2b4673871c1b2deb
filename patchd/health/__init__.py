"""The health check after applying a patch: fetch each installation's URL before (the
baseline) and after, decide whether the site got worse (:mod:`patchd.health.verdict`)."""
