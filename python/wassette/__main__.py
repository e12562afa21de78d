from wassette.cli.main import main

raise SystemExit(main())
