from spendfuse.cli import main

main()
