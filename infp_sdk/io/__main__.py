"""``python -m infp_sdk.io --schema``: print the wire protocol's JSON Schema."""

import sys

from .protocol import main

sys.exit(main())
