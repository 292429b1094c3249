from brokenvideos.cli import main

raise SystemExit(main())
