"""A throw-away single-node SLURM cluster on this machine, for the cluster tests.

    with SlurmCluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sinfo"], env=cluster.env)

Everything lives under one private directory: the munge key and socket, a MariaDB data
directory (TCP on 127.0.0.1, a free port), slurmdbd, slurmctld and slurmd with their
configuration (generated from this machine's cores and memory, see `slurmd -C`), state,
spool and logs. Clients find the cluster through SLURM_CONF in `cluster.env`; nothing is
written to /etc and no system service is touched. Every daemon runs in the foreground as a
child of this process and is stopped by `stop()` (the context manager always calls it),
after the jobs still known to the cluster are cancelled.

Needs root and the Debian packages slurm-wlm, slurmdbd, munge and mariadb-server;
`install_packages()` installs whatever is missing with apt-get. Accounting (slurmdbd) is
there because the SLURM executor plugin asks `sacct` for job states and guesses accounts
with `sacctmgr`.

Run by hand, for a look around (Ctrl-C stops everything):

    python tests/helpers/slurm_cluster.py /tmp/slurm-play
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PACKAGES = {
    "sinfo": "slurm-wlm",
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "slurmdbd": "slurmdbd",
    "munged": "munge",
    "mariadbd": "mariadb-server",
}
SBIN = ("/usr/sbin", "/sbin")
CLUSTER_NAME = "mimicry"
ACCOUNT = "mimicry"
PARTITION = "main"
# Memory left to the operating system and the Snakemake main process.
RESERVED_MB = 1024
DB_USER = "slurm"
DB_PASSWORD = "slurm-test-only"
DB_NAME = "slurm_acct_db"


def which(program):
    return shutil.which(program, path=os.pathsep.join([os.environ["PATH"], *SBIN]))


def missing_packages():
    return sorted({pkg for program, pkg in PACKAGES.items() if which(program) is None})


def install_packages():
    """apt-get install the packages whose programs are missing (needs root)."""
    missing = missing_packages()
    if not missing:
        return []
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    # policy-rc.d in containers keeps the packages' own services from starting; on a
    # machine with systemd they may start and are left alone (different ports and
    # sockets from ours).
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )
    return missing


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout, what, process=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    detail = ""
    if log is not None and Path(log).exists():
        detail = "\n" + Path(log).read_text(errors="replace")[-3000:]
    state = "" if process is None else f" (exit code {process.poll()})"
    raise RuntimeError(f"timed out waiting for {what}{state}{detail}")


def port_open(port):
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def node_layout():
    """This machine's node line as slurmd sees it: CPUs, sockets, cores, threads, memory."""
    out = subprocess.run(
        [which("slurmd"), "-C"], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    layout = {
        key: int(fields[key])
        for key in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket")
        if key in fields
    }
    layout["ThreadsPerCore"] = int(fields.get("ThreadsPerCore", 1))
    total_mb = int(fields.get("RealMemory", 0)) or _meminfo_mb()
    layout["RealMemory"] = max(total_mb - RESERVED_MB, 1024)
    if layout.get("CPUs") != os.cpu_count():
        layout = {"CPUs": os.cpu_count(), "RealMemory": layout["RealMemory"]}
    return layout


def _meminfo_mb():
    text = Path("/proc/meminfo").read_text()
    return int(re.search(r"MemTotal:\s+(\d+) kB", text).group(1)) // 1024


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class SlurmCluster:
    def __init__(self, root):
        self.root = Path(root).resolve()
        self.hostname = socket.gethostname().split(".")[0]
        self.ports = {}
        self.processes = []  # (name, Popen), in start order
        self.layout = None
        self.env = None

    # -- paths ---------------------------------------------------------------------------
    def path(self, *parts):
        return self.root.joinpath(*parts)

    @property
    def munge_socket(self):
        return self.path("munge", "munge.socket")

    @property
    def mysql_socket(self):
        return self.path("mysql", "mysqld.sock")

    @property
    def slurm_conf(self):
        return self.path("etc", "slurm.conf")

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self):
        # SIGTERM (timeout, CI cancellation) would end Python without running `finally`
        # blocks and leave the daemons behind: turn it into SystemExit while we own them.
        self._previous_sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None

    def start(self):
        if os.geteuid() != 0:
            raise RuntimeError(
                "a private SLURM cluster needs root (daemons run as root)"
            )
        install_packages()
        for sub in (
            "bin",
            "etc",
            "munge",
            "mysql",
            "db",
            "state",
            "spool",
            "log",
            "run",
        ):
            self.path(sub).mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in ("mysql", "dbd", "ctld", "slurmd")}
        self.layout = node_layout()
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.slurm_conf),
            "PATH": os.pathsep.join([str(self.path("bin")), os.environ["PATH"], *SBIN]),
        }
        self._write_slurm_conf()
        self._write_slurmdbd_conf()
        self._write_srun_shim()
        self._start_munge()
        self._start_mariadb()
        self._start_slurmdbd()
        self._register_cluster()
        self._start_slurmctld()
        self._start_slurmd()
        self.wait_for_idle_node()

    def stop(self):
        """Cancel leftover jobs, then stop the daemons in reverse order of starting."""
        if self._running("slurmctld"):
            self.run("scancel", "--full", "--partition", PARTITION, check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.queued_jobs():
                time.sleep(1)
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self.processes = []

    def _running(self, name):
        return any(n == name and p.poll() is None for n, p in self.processes)

    def daemons_alive(self):
        return [name for name, process in self.processes if process.poll() is None]

    # -- clients -------------------------------------------------------------------------
    def run(self, *args, check=True, timeout=60):
        return subprocess.run(
            args,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def queued_jobs(self):
        result = self.run("squeue", "-h", "-o", "%i", check=False)
        return result.stdout.split() if result.returncode == 0 else []

    def node_state(self):
        result = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def wait_for_idle_node(self, timeout=60):
        wait_for(
            lambda: self.node_state() == "idle",
            timeout,
            f"node {self.hostname} to become idle (state: {self.node_state()!r})",
            process=getattr(self, "slurmd", None),
            log=self.path("log", "slurmd.log"),
        )

    def accounting(self, *sacct_args):
        """sacct rows (dicts) of every job (allocation, not step) the cluster ran."""
        fields = [
            "JobID",
            "JobName",
            "State",
            "ExitCode",
            "AllocCPUS",
            "ReqMem",
            "Comment",
        ]
        result = self.run(
            "sacct",
            "--allusers",
            "--allocations",
            "--parsable2",
            "--noheader",
            "--starttime",
            "now-1days",
            f"--format={','.join(fields)}",
            *sacct_args,
        )
        return [
            dict(zip(fields, line.split("|")))
            for line in result.stdout.splitlines()
            if line.strip()
        ]

    # -- configuration -------------------------------------------------------------------
    def _write_slurm_conf(self):
        node = " ".join(f"{key}={value}" for key, value in self.layout.items())
        auth = f"socket={self.munge_socket}"
        text = f"""\
# Generated by tests/helpers/slurm_cluster.py: a private single-node cluster.
ClusterName={CLUSTER_NAME}
SlurmctldHost={self.hostname}(127.0.0.1)
SlurmctldPort={self.ports["ctld"]}
SlurmdPort={self.ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo={auth}
StateSaveLocation={self.path("state")}
SlurmdSpoolDir={self.path("spool")}
SlurmctldPidFile={self.path("run", "slurmctld.pid")}
SlurmdPidFile={self.path("run", "slurmd.pid")}
SlurmctldLogFile={self.path("log", "slurmctld.log")}
SlurmdLogFile={self.path("log", "slurmd.log")}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports["dbd"]}
# slurmdbd clients take the munge socket from here, not from AuthInfo.
AccountingStoragePass={self.munge_socket}
AccountingStorageEnforce=associations
# Keep sbatch --comment (the plugin writes rule and wildcards there) for sacct.
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName={self.hostname} NodeAddr=127.0.0.1 {node} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP
"""
        self.slurm_conf.write_text(text)

    def _write_srun_shim(self):
        """srun that finds this cluster's slurm.conf even without SLURM_CONF.

        Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_*
        variable except a few job ids from the environment of its `srun` call, SLURM_CONF
        included; srun then looks for /etc/slurm/slurm.conf or a configless DNS record and
        fails ("Could not establish a configuration source"). Real clusters keep slurm.conf
        at the default path or run configless, so only a private cluster like this one
        needs the shim; it sits first on the PATH that jobs inherit (sbatch --export=ALL).
        """
        shim = self.path("bin", "srun")
        shim.write_text(
            "#!/bin/sh\n"
            f"SLURM_CONF=${{SLURM_CONF:-{self.slurm_conf}}}\n"
            "export SLURM_CONF\n"
            f'exec {which("srun")} "$@"\n'
        )
        shim.chmod(0o755)

    def _write_slurmdbd_conf(self):
        conf = self.path("etc", "slurmdbd.conf")
        conf.write_text(f"""\
# Generated by tests/helpers/slurm_cluster.py
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost={self.hostname}
DbdAddr=127.0.0.1
DbdPort={self.ports["dbd"]}
SlurmUser=root
LogFile={self.path("log", "slurmdbd.log")}
PidFile={self.path("run", "slurmdbd.pid")}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports["mysql"]}
StorageUser={DB_USER}
StoragePass={DB_PASSWORD}
StorageLoc={DB_NAME}
""")
        conf.chmod(0o600)

    # -- daemons -------------------------------------------------------------------------
    def _spawn(self, name, args):
        log = open(self.path("log", f"{name}.out"), "wb")
        process = subprocess.Popen(
            args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append((name, process))
        return process

    def _start_munge(self):
        key = self.path("munge", "munge.key")
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.path("munge").chmod(0o700)
        process = self._spawn(
            "munged",
            [
                which("munged"),
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.path('run', 'munged.pid')}",
                f"--seed-file={self.path('munge', 'munged.seed')}",
                f"--log-file={self.path('log', 'munged.log')}",
                "--num-threads=2",
            ],
        )
        wait_for(
            self.munge_socket.exists,
            30,
            "munged",
            process,
            self.path("log", "munged.out"),
        )

    def _start_mariadb(self):
        datadir = self.path("db")
        common = ["--no-defaults"]
        if not any(datadir.iterdir()):
            subprocess.run(
                [
                    which("mariadb-install-db"),
                    *common,
                    f"--datadir={datadir}",
                    "--user=root",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ],
                check=True,
                capture_output=True,
            )
        process = self._spawn(
            "mariadbd",
            [
                which("mariadbd"),
                *common,
                f"--datadir={datadir}",
                f"--socket={self.mysql_socket}",
                f"--port={self.ports['mysql']}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--user=root",
                f"--pid-file={self.path('run', 'mariadbd.pid')}",
                f"--log-error={self.path('log', 'mariadbd.log')}",
                "--innodb-buffer-pool-size=128M",
                "--innodb-lock-wait-timeout=900",
            ],
        )
        wait_for(
            self.mysql_socket.exists,
            60,
            "MariaDB",
            process,
            self.path("log", "mariadbd.log"),
        )
        sql = (
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}';"
            f"CREATE DATABASE IF NOT EXISTS {DB_NAME};"
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'%';"
        )
        subprocess.run(
            [
                which("mariadb"),
                "--no-defaults",
                f"--socket={self.mysql_socket}",
                "-u",
                "root",
                "-e",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def _start_slurmdbd(self):
        process = self._spawn("slurmdbd", [which("slurmdbd"), "-D", "-v"])
        wait_for(
            lambda: port_open(self.ports["dbd"]),
            90,
            "slurmdbd",
            process,
            self.path("log", "slurmdbd.log"),
        )

    def _register_cluster(self):
        """The cluster, an account and root's association, as a site admin would."""
        for args in (
            ["add", "cluster", CLUSTER_NAME],
            ["add", "account", ACCOUNT, f"Cluster={CLUSTER_NAME}", "Description=tests"],
            ["add", "user", "root", f"Account={ACCOUNT}", f"Cluster={CLUSTER_NAME}"],
        ):
            result = self.run("sacctmgr", "-i", *args, check=False)
            if result.returncode != 0 and "already exists" not in (
                result.stdout + result.stderr
            ):
                raise RuntimeError(
                    f"sacctmgr {' '.join(args)} failed: {result.stdout}{result.stderr}"
                )

    def _start_slurmctld(self):
        process = self._spawn("slurmctld", [which("slurmctld"), "-D", "-i"])
        wait_for(
            lambda: self.run("scontrol", "ping", check=False).returncode == 0,
            60,
            "slurmctld",
            process,
            self.path("log", "slurmctld.log"),
        )

    def _start_slurmd(self):
        self.slurmd = self._spawn(
            "slurmd", [which("slurmd"), "-D", "-N", self.hostname]
        )


def main(argv):
    root = Path(argv[1] if len(argv) > 1 else "/tmp/mimicry-slurm")
    with SlurmCluster(root) as cluster:
        print(f"export SLURM_CONF={cluster.slurm_conf}")
        print(cluster.run("sinfo").stdout, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main(sys.argv)
