from rootless.cli import main

raise SystemExit(main())
