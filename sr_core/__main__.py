from sr_core.cli import main

raise SystemExit(main())
