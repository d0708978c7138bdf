import sys

from reflectchat.cli.main import main

sys.exit(main())
