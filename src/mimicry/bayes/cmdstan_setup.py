"""One bounded attempt to install CmdStan with CmdStanPy's own installer (`make install`).

    python -m mimicry.bayes.cmdstan_setup --outcome .venv/.cmdstan-outcome [--retry]

Prints which Stan backend ``stan.backend: auto`` runs. When CmdStan is found nothing is
installed. Otherwise, unless ``--outcome`` records an earlier attempt (``--retry``
ignores it), CmdStanPy's ``install_cmdstan`` runs in a child process: every network call
gives up after ``NETWORK_TIMEOUT_S``, the whole attempt after ``--timeout`` seconds
(a partial installation is then removed). The outcome is written to ``--outcome`` and
the installer's output beside it (``<outcome>.log``); it is kept only while no CmdStan
is found. The exit status is 0 whatever
happens: without CmdStan the workflow runs PyStan.
"""

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# The Stan of httpstan 4.13 (PyStan 3.10): both backends run the same Stan.
CMDSTAN_VERSION = "2.35.0"
NETWORK_TIMEOUT_S = 30
FAILURE_MARK = "CmdStan installation failed."


def found_cmdstan():
    """(version, path) of the CmdStan installation CmdStanPy finds, or None."""
    import cmdstanpy

    try:
        path = cmdstanpy.cmdstan_path()
    except ValueError:
        return None
    version = ".".join(map(str, cmdstanpy.cmdstan_version() or ())) or "?"
    return version, path


def backend_message(found, reason):
    if found:
        return f"Stan backend: cmdstanpy (CmdStan {found[0]} at {found[1]})"
    return (
        f"Stan backend: PyStan (CmdStan not installable here: {reason}; "
        "`make install-cmdstan` tries again)"
    )


def attempt(version, timeout, log_path):
    """Run the installer in a child process; return None or why it failed."""
    target = Path.home() / ".cmdstan" / f"cmdstan-{version}"
    existed = target.exists()
    started = time.monotonic()
    with open(log_path, "w") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "mimicry.bayes.cmdstan_setup", "--install", version],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            returncode = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            returncode = None
    seconds = time.monotonic() - started
    if returncode == 0:
        return None
    if not existed:
        shutil.rmtree(target, ignore_errors=True)
    if returncode is None:
        return f"the installer did not finish in {timeout:g} s"
    lines = Path(log_path).read_text().splitlines()
    after_mark = lines[lines.index(FAILURE_MARK) + 1 :] if FAILURE_MARK in lines else []
    detail = next((line.strip() for line in after_mark if line.strip()), None)
    cause = next((line for line in lines if line.startswith("URLError:")), None)
    if detail and cause:
        detail = f"{detail} ({cause})"
    return (
        f"{detail or f'the installer exited with status {returncode}'} "
        f"(after {seconds:.0f} s; see {log_path})"
    )


def install(version):
    """The child: CmdStanPy's installer with a timeout on every network call."""
    import cmdstanpy

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # CmdStanPy's installer opens URLs without a timeout: a network that drops
    # packets would hold each of its retries for minutes.
    socket.setdefaulttimeout(NETWORK_TIMEOUT_S)
    installed = cmdstanpy.install_cmdstan(
        version=version, cores=os.cpu_count() or 1, progress=False, verbose=False
    )
    return 0 if installed else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcome", type=Path, help="where the outcome is kept")
    parser.add_argument("--retry", action="store_true", help="ignore a kept outcome")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--version", default=CMDSTAN_VERSION)
    parser.add_argument("--install", metavar="VERSION", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.install:
        return install(args.install)
    if args.outcome is None:
        parser.error("--outcome is required")

    found = found_cmdstan()
    if found:
        reason = None
    elif args.outcome.is_file() and not args.retry:
        reason = args.outcome.read_text().strip()
    else:
        print(
            f"Installing CmdStan {args.version} with cmdstanpy.install_cmdstan "
            f"(at most {args.timeout:.0f} s)...",
            flush=True,
        )
        args.outcome.parent.mkdir(parents=True, exist_ok=True)
        log_path = args.outcome.with_name(args.outcome.name + ".log")
        reason = attempt(args.version, args.timeout, log_path)
        found = found_cmdstan() if reason is None else None
        if reason is None and found is None:
            reason = "the installer reported success but CmdStanPy finds no CmdStan"
    # Kept only when there is no CmdStan: a later run then does not try again.
    if found:
        args.outcome.unlink(missing_ok=True)
    else:
        args.outcome.write_text(reason + "\n")
    print(backend_message(found, reason))
    return 0


if __name__ == "__main__":
    sys.exit(main())
