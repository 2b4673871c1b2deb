"""``python -m patchd.agent``: serve the agent protocol on stdin/stdout (for debugging).

Hosts run the agent through :data:`patchd.agent.package.BOOTSTRAP` instead, which gets the
code over the connection; this entry point serves the locally installed copy.
"""

from __future__ import annotations

import sys

from patchd.agent.server import main

if __name__ == "__main__":
    sys.exit(main())
