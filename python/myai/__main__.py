"""`python -m myai`: see myai.cli."""

from myai.cli import main

raise SystemExit(main())
