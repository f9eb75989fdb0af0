"""A child process that builds the home router (scripts/labs/home-router.toml, renamed
with a uid) and waits to be killed: ``home_router.py UID STATE_DIR``.

It prints ``BUILT`` once the lab is up (hosts files included), then sleeps.
"""

from __future__ import annotations

import sys
import time

from examples import renamed

from netns_kit import Lab

uid, state = sys.argv[1], sys.argv[2]
lab = Lab.from_dict(renamed("home-router", uid), state_dir=state)
lab.open()
print("BUILT", flush=True)
time.sleep(600)
