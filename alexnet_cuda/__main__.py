from alexnet_cuda.cli import main

raise SystemExit(main())
