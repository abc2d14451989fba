"""The reverse-proxy set-up of deploy/, started on 127.0.0.1 with one command.

    make deploy-local            # or: .venv/bin/python -m deploy.local

makes a throwaway certificate authority and a certificate for 127.0.0.1 and
localhost, one JWT secret for both instances, migrates the database once,
starts two gunicorn instances (production settings, Secure cookies,
TRUSTED_PROXY_HOPS=1) and nginx with deploy/nginx.conf in front of them,
prints the https URL and the CA file for curl, and stops everything on Ctrl-C
or SIGTERM. Everything lives in a temporary directory, removed at the end.

The test (tests/e2e/test_deploy.py) runs the same `Deployment`.
"""

import argparse
import datetime
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.processes import (
    Gunicorn,
    Process,
    free_port,
    migrate_database,
    new_encryption_key,
    without_own_settings,
)

TEMPLATE = Path(__file__).resolve().parent / "nginx.conf"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/jwt_api_deploy"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def find_nginx():
    """nginx's path: Debian installs it in /usr/sbin, often not on a user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def make_certificates(folder):
    """A CA made now, and a certificate it signs for 127.0.0.1 and localhost.
    Returns (ca_file, cert_file, key_file); the keys never leave `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwt-api local test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


def _key_usage(cert_sign):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def render_nginx_conf(values, as_root):
    """deploy/nginx.conf with its {{placeholders}} filled in; every one must be."""
    text = TEMPLATE.read_text()
    if not as_root:
        # nginx ignores `user` (with a warning) unless its master is root.
        text = re.sub(r"(?m)^user \{\{user\}\};$", "# user: not root, workers run as me", text)
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), text)


def worker_user():
    """The unprivileged user nginx's workers drop to when the master is root."""
    import grp
    import pwd

    user = pwd.getpwnam("nobody")
    return f"{user.pw_name} {grp.getgrgid(user.pw_gid).gr_name}"


def ensure_postgres_database(url):
    """Create the database `url` names when it does not exist (as `make run`
    needs no set-up, neither does this)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from config import database_url

    target = make_url(database_url(url))
    if not target.drivername.startswith("postgresql"):
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).first()
            if not found:
                quoted = target.database.replace('"', '""')
                conn.execute(text(f'CREATE DATABASE "{quoted}"'))
    finally:
        admin.dispose()


class Deployment:
    """nginx (TLS) in front of two gunicorn instances sharing PostgreSQL and Redis.

    with Deployment(database_url, redis_url) as d:
        d.url, d.ca_file, d.instances, d.nginx_access_records()
    """

    def __init__(
        self,
        database_url=DEFAULT_DATABASE_URL,
        redis_url=DEFAULT_REDIS_URL,
        redis_key_prefix="jwt-api-deploy:",
        https_port=None,
        http_port=None,
        base_env=None,
        workdir=None,
    ):
        self.database_url = database_url
        self.redis_url = redis_url
        self.redis_key_prefix = redis_key_prefix
        self.https_port = https_port or free_port()
        self.http_port = http_port or free_port()
        self.base_env = dict(os.environ if base_env is None else base_env)
        self._workdir = workdir
        self.instances = []
        self.nginx = None
        self.dir = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=30):
        nginx = find_nginx()
        if not nginx:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        deadline = time.monotonic() + timeout
        self.dir = Path(self._workdir or tempfile.mkdtemp(prefix="jwt-api-deploy-"))
        # nginx's workers (another user when started as root) go through this
        # directory to their temporary files; its other contents stay private.
        self.dir.chmod(0o711)
        tls = self.dir / "tls"
        tls.mkdir(mode=0o700)
        self.ca_file, cert_file, key_file = make_certificates(tls)

        env = self.app_env()
        migrate_database(env)
        for number in (1, 2):
            instance = self.dir / f"instance-{number}"
            instance.mkdir()
            env_n = {**env, "PORT": str(free_port()), "INSTANCE_PATH": str(instance)}
            name, log = f"gunicorn-{number}", self.dir / f"gunicorn-{number}.log"
            self.instances.append(Gunicorn(env_n, log, name).start(migrate=False, wait=False))
        for instance in self.instances:
            instance.wait_until_ready(deadline, path="/api/health/ready")

        runtime = self.dir / "nginx"
        runtime.mkdir(mode=0o711)
        as_root = os.geteuid() == 0
        conf = self.dir / "nginx.conf"
        conf.write_text(
            render_nginx_conf(
                {
                    "user": worker_user() if as_root else "",
                    "runtime_dir": runtime,
                    "server_name": "127.0.0.1 localhost",
                    "https_listen": f"127.0.0.1:{self.https_port}",
                    "http_listen": f"127.0.0.1:{self.http_port}",
                    "public_origin": self.url,
                    "ssl_certificate": cert_file,
                    "ssl_certificate_key": key_file,
                    "upstream_1": f"127.0.0.1:{self.instances[0].port}",
                    "upstream_2": f"127.0.0.1:{self.instances[1].port}",
                },
                as_root,
            )
        )
        self.access_log = runtime / "access.log"
        args = [nginx, "-p", runtime, "-e", runtime / "error.log", "-c", conf]
        check = subprocess.run([*args, "-t", "-q"], capture_output=True, text=True)  # noqa: S603
        if check.returncode:
            raise RuntimeError(f"nginx -t refused {conf}:\n{check.stdout}{check.stderr}")
        self.nginx = Process("nginx", [*args, "-g", "daemon off;"], None, self.dir / "nginx.out")
        self.nginx.start()
        self._wait_for_tls(runtime / "error.log", deadline)
        return self

    def app_env(self):
        env = without_own_settings(self.base_env, also=("PROMETHEUS_",))
        env.update(
            APP_CONFIG="production",
            # One secret for both instances: a token one issues, the other verifies;
            # what one encrypts, the other decrypts.
            SECRET_KEY=secrets.token_urlsafe(48),
            JWT_SECRET_KEY=secrets.token_urlsafe(48),
            ENCRYPTION_KEYS=new_encryption_key(),
            JWT_COOKIE_SECURE="true",
            TRUSTED_PROXY_HOPS="1",
            # The links in mails open the demo page through nginx. Mail goes to
            # MAIL_URL if set, else to an SMTP server on 127.0.0.1:1025 (such as
            # `npx maildev --ip 127.0.0.1`); until one listens, it waits in the outbox.
            APP_URL=f"{self.url}/",
            # The tokens' issuer is the API's public https URL, as RFC 8414's
            # metadata wants it (and builds its endpoints' URLs on it).
            JWT_ISSUER=self.url,
            MAIL_URL=self.base_env.get("MAIL_URL") or "smtp://127.0.0.1:1025",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            REDIS_KEY_PREFIX=self.redis_key_prefix,
            HOST="127.0.0.1",
            WEB_CONCURRENCY="2",
        )
        return env

    def _wait_for_tls(self, error_log, deadline):
        context = ssl.create_default_context(cafile=str(self.ca_file))
        while time.monotonic() < deadline:
            if not self.nginx.running():
                log = error_log.read_text() if error_log.exists() else ""
                raise RuntimeError(f"nginx exited:\n{self.nginx.output()}{log}")
            try:
                address = ("127.0.0.1", self.https_port)
                with (
                    socket.create_connection(address, timeout=2) as raw,
                    context.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not answer on {self.url} in time")

    def nginx_access_records(self):
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]

    def stop_instances(self):
        for instance in self.instances:
            instance.terminate()
        for instance in self.instances:
            instance.stop()

    def stop(self):
        """nginx first (no new requests), then each gunicorn; by PID, waiting for each."""
        if self.nginx:
            self.nginx.stop()
        self.stop_instances()
        if self.dir and not self._workdir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def processes(self):
        return [p for p in (self.nginx, *self.instances) if p]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local",
        description="nginx (TLS) in front of two gunicorn instances, on 127.0.0.1.",
    )
    parser.add_argument("--https-port", type=int, help="default: a free port")
    parser.add_argument("--http-port", type=int, help="default: a free port")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DEPLOY_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL; created when absent (default: %(default)s, or DEPLOY_DATABASE_URL)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("DEPLOY_REDIS_URL", DEFAULT_REDIS_URL),
        help="default: %(default)s, or DEPLOY_REDIS_URL",
    )
    args = parser.parse_args(argv)

    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def stop_on_signal(_signum, _frame):
        # Once: a second Ctrl-C must not cut the stopping short.
        for sig in stop_signals:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    # SIGINT too: a shell starting this in the background may have ignored it.
    for sig in stop_signals:
        signal.signal(sig, stop_on_signal)
    ensure_postgres_database(args.database_url)
    deployment = Deployment(
        args.database_url, args.redis_url, https_port=args.https_port, http_port=args.http_port
    )
    try:
        with deployment:
            print(_banner(deployment), flush=True)
            while all(p.running() for p in deployment.processes()):
                time.sleep(0.5)
            gone = [p.name for p in deployment.processes() if not p.running()]
            print(f"{', '.join(gone)} exited; stopping the rest.", file=sys.stderr)
            for p in deployment.processes():
                if not p.running():
                    print(p.output()[-2000:], file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nStopped: nginx and both gunicorn instances.", flush=True)
        return 0


def _banner(d):
    a, b = d.instances
    return f"""
Serving {d.url}  (nginx, TLS; plain http on {d.http_url} is refused)
  gunicorn-1  {a.url} (pid {a.pid})   gunicorn-2  {b.url} (pid {b.pid})   nginx pid {d.nginx.pid}
  CA certificate for clients: {d.ca_file}
  logs: {d.dir}/gunicorn-1.log, gunicorn-2.log, nginx/access.log, nginx/error.log
  stop it all: Ctrl-C here, or kill {os.getpid()} (this runner)
  metrics (private, not through nginx): {a.url}/metrics and {b.url}/metrics

Try:
  curl --cacert {d.ca_file} {d.url}/api/auth/register -H 'Content-Type: application/json' \\
       -d '{{"username": "bob", "password": "correct horse"}}'
  curl --cacert {d.ca_file} {d.url}/api/auth/login -H 'Content-Type: application/json' \\
       -d '{{"username": "bob", "password": "correct horse"}}'

Ctrl-C stops everything and removes {d.dir}.
"""


if __name__ == "__main__":
    sys.exit(main())
