import sys

from optuna_bigmodel.cli import main

sys.exit(main())
