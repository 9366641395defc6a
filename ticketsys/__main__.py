from ticketsys.cli import main

raise SystemExit(main())
