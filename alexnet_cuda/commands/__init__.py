"""One module per `alexnet-cuda` subcommand: add_arguments(parser) and run(args) -> exit status."""
