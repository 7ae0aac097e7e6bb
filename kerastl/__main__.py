"""`python -m kerastl`: the same command line as `kerastl`."""

from kerastl.cli import main

if __name__ == "__main__":
    main()
