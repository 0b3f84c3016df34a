"""``python -m mdq_teach.train``: the command line of :mod:`mdq_teach.nn.trainer` (needs torch)."""

import sys

from mdq_teach._torch_missing import TorchMissing

if __name__ == "__main__":
    try:
        from mdq_teach.nn.trainer import main
    except TorchMissing as err:  # a command line ends in the message, not in a traceback
        sys.exit(f"error: {err}")
    main()
