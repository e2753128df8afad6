from annostat.cli import main

main()
