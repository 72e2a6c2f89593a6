from robustrec.cli.app import main

main()
