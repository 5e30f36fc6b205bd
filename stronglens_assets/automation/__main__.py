"""``python -m stronglens_assets.automation apply-pools deploy/pools.yaml``."""

from stronglens_assets.automation.deploy import main

raise SystemExit(main())
