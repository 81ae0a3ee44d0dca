from valdrix.cli.main import main

main()
