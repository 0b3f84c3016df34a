"""``python -m mdq_teach.train``: the command line of :mod:`mdq_teach.nn.train` (needs torch)."""

from mdq_teach.nn.train import main

if __name__ == "__main__":
    main()
