import sys

from reflectchat.cli import main

sys.exit(main())
