from sysgym.cli import main

raise SystemExit(main())
