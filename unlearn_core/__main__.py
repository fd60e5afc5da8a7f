from unlearn_core.cli import main

raise SystemExit(main())
