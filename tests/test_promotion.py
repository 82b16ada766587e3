"""The dev -> prod promotion gate under mocks: the dev stack's outputs are answered by the test
(StackReference). Exact decisions and messages for dev missing, behind, equal and overridden;
nothing is registered when the gate refuses."""

import importlib
import importlib.metadata
import inspect
from typing import cast

import pulumi
import pytest

from components import stack_config as stack_config_module
from tests.mock_cloud import advance, copy_stack_config, run_program, stack_name, with_phase

DEV, PROD = copy_stack_config("dev"), copy_stack_config("prod")
ENTRY = dict(DEV["eks-gp3-migration:migrations"][0], zone="us-east-1a")
PROD_WITH_VOLUME = {**PROD, "eks-gp3-migration:migrations": [ENTRY]}
FINGERPRINT = "driver present v1.53.0-eksbuild.1, snapshots manifests v8.6.0"


def prod(config, dev_outputs, previous=None):
    return run_program(
        config, stack="prod", other_stacks={stack_name("dev"): dev_outputs}, previous_outputs=previous or {}
    )


def problems(run) -> list[str]:
    assert run.error is not None, "the gate let it through"
    return [line.strip()[2:] for line in str(run.error).splitlines() if line.strip().startswith("- ")]


def test_dev_publishes_platform_versions_and_the_phases_it_completed():
    runs = advance(DEV, ["precopy", "cutover", "finalize"])
    assert runs[0].outputs["platformVersions"] == {
        "driverKind": "present",
        "driverVersion": "v1.53.0-eksbuild.1",
        "snapshotSupport": "manifests",
        "snapshotVersion": "v8.6.0",
    }
    assert [r.outputs["provenPhases"] for r in runs] == [
        {FINGERPRINT: ["precopy"]},
        {FINGERPRINT: ["precopy", "cutover"]},
        {FINGERPRINT: ["precopy", "cutover", "finalize"]},
    ]


def test_prod_is_refused_when_dev_published_nothing():
    run = prod(PROD, {})
    assert problems(run) == [
        "promoteFrom: stack 'dev' has published no platform versions yet: run `pulumi up` there first"
    ]
    assert run.registrations == []


def test_prod_is_refused_a_platform_version_dev_has_not_run():
    dev = advance({**DEV, "eks-gp3-migration:driverVersion": "v1.52.0-eksbuild.1"}, ["precopy"])[-1]
    run = prod(PROD, dev.outputs)
    assert problems(run) == [
        "promoteFrom: 'dev' runs driver present v1.52.0-eksbuild.1, snapshots manifests v8.6.0; this stack asks for "
        f"{FINGERPRINT}: apply these versions to 'dev' first"
    ]
    assert run.registrations == []


def test_prod_is_refused_a_phase_dev_has_not_completed():
    dev = advance(DEV, ["precopy"])[-1]
    prod_precopy = prod(PROD_WITH_VOLUME, dev.outputs)
    assert prod_precopy.error is None, prod_precopy.error
    run = prod(with_phase(PROD_WITH_VOLUME, "cutover"), dev.outputs, previous=prod_precopy.outputs)
    assert problems(run) == [
        f"migrations[0].phase: 'cutover' has not been completed on 'dev' with {FINGERPRINT} "
        "(completed there: precopy): run it there first"
    ]
    assert run.registrations == []


def test_prod_may_follow_once_dev_completed_the_phase_with_the_same_versions():
    dev = advance(DEV, ["precopy", "cutover"])[-1]
    prod_precopy = prod(PROD_WITH_VOLUME, dev.outputs)
    run = prod(with_phase(PROD_WITH_VOLUME, "cutover"), dev.outputs, previous=prod_precopy.outputs)
    assert run.error is None, run.error
    assert run.has("migrate-default-ebs-gp2-claim-final-snapshot")
    assert "promotionOverride" not in run.outputs


def test_override_lets_prod_through_and_is_logged_and_published(caplog):
    reason = "INC-4711: dev cluster down, prod disk full"
    with caplog.at_level("WARNING"):
        run = prod({**PROD, "eks-gp3-migration:promotionOverride": reason}, {})
    assert run.error is None, run.error
    assert run.outputs["promotionOverride"] == reason
    assert [r.getMessage() for r in caplog.records if "promotion gate OVERRIDDEN" in r.getMessage()] == [
        f"promotion gate OVERRIDDEN ({reason}): promoteFrom: stack 'dev' has published no platform versions yet: "
        "run `pulumi up` there first"
    ]


STACK_NAME_RULE = "use `stack` or `org/project/stack`, each part letters, digits, '-', '_' or '.'"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eks-gp3-migration:promotionOverride": "because"}, "'because' is too short"),
        (
            {"eks-gp3-migration:promoteFrom": "dev stack"},
            f"promoteFrom: 'dev stack' is not a stack name: {STACK_NAME_RULE}",
        ),
    ],
)
def test_bad_promotion_config(changes, message):
    run = prod({**PROD, **changes}, {})
    assert run.error is not None and message in str(run.error)
    assert run.registrations == []


@pytest.mark.parametrize(
    "value",
    [
        # project/stack: a backend reads it as org/stack, another stack than meant.
        "eks-gp3-migration/dev",
        "acme//dev",
        "/dev",
        "dev/",
        "acme/eks-gp3-migration/dev/extra",
        "dév",
        "dev\n",
        "dev:eu",
    ],
)
def test_promote_from_refuses_names_no_backend_accepts(value):
    run = prod({**PROD, "eks-gp3-migration:promoteFrom": value}, {})
    assert run.error is not None
    assert f"promoteFrom: {value!r} is not a stack name: {STACK_NAME_RULE}" in str(run.error)
    assert run.registrations == [] and run.reads == []


def test_an_empty_promote_from_is_no_gate_like_a_stack_without_the_key():
    """Pulumi.yaml declares promoteFrom's default as '' (the Pulumi CLI refuses a stack that leaves
    out a declared key without a default), so '' is what the program gets for a stack that sets
    none: it cannot be told apart from an unset key (tests/test_project_config.py)."""
    without = {k: v for k, v in PROD.items() if k != "eks-gp3-migration:promoteFrom"}
    empty, unset = prod({**without, "eks-gp3-migration:promoteFrom": ""}, {}), prod(without, {})
    assert (empty.error, unset.error) == (None, None)
    assert sorted((r.type, r.name) for r in empty.registrations) == sorted(
        (r.type, r.name) for r in unset.registrations
    )
    assert sorted(empty.reads) == sorted(unset.reads)


@pytest.mark.parametrize(
    ("value", "reference"),
    [
        ("dev", "acme/eks-gp3-migration/dev"),
        ("dev-eu_1.b", "acme/eks-gp3-migration/dev-eu_1.b"),
        ("acme/eks-gp3-migration/dev", "acme/eks-gp3-migration/dev"),
        ("Other-Org/other.project/dev_2", "Other-Org/other.project/dev_2"),
    ],
)
def test_promote_from_accepts_a_stack_name_or_a_fully_qualified_one(value, reference):
    dev = advance(DEV, ["precopy"])[-1]
    run = run_program(
        {**PROD, "eks-gp3-migration:promoteFrom": value}, stack="prod", other_stacks={reference: dev.outputs}
    )
    assert run.error is None, run.error
    # This stack's own record, then the upstream one under exactly the name the backend is asked for.
    assert run.reads == [
        ("pulumi:pulumi:StackReference", "outputs-of-acme-eks-gp3-migration-prod"),
        ("pulumi:pulumi:StackReference", f"outputs-of-{reference.replace('/', '-')}"),
    ]


def test_the_private_sdk_function_that_reads_previous_outputs_is_still_there():
    """components/stack_config.py `resolved_now` relies on pulumi's private `_sync_await` (no public
    synchronous API fits; see its docstring). An SDK upgrade that removes it or changes how it is
    called must fail here, loudly, not in a user's `pulumi preview`."""
    version = importlib.metadata.version("pulumi")
    module = importlib.import_module("pulumi.runtime.sync_await")
    function = getattr(module, "_sync_await", None)
    assert callable(function), (
        f"pulumi {version} no longer has pulumi.runtime.sync_await._sync_await: components/stack_config.py "
        "resolved_now cannot read the previous outputs; move the program to pulumi.run (see its docstring)"
    )
    parameters = list(inspect.signature(function).parameters.values())
    assert [(p.name, p.kind) for p in parameters] == [("awaitable", inspect.Parameter.POSITIONAL_OR_KEYWORD)], (
        f"pulumi {version} changed _sync_await's signature to {inspect.signature(function)}: "
        "check components/stack_config.py resolved_now against the new SDK before upgrading"
    )


def test_a_missing_private_sdk_function_stops_the_program_with_a_message_not_a_traceback(monkeypatch):
    module = importlib.import_module("pulumi.runtime.sync_await")
    monkeypatch.delattr(module, "_sync_await")
    with pytest.raises(pulumi.RunError) as refused:
        # Refused before the Output is touched, so any stand-in will do.
        stack_config_module.resolved_now(cast(pulumi.Output, None))
    assert str(refused.value).startswith(
        f"pulumi {importlib.metadata.version('pulumi')} has no pulumi.runtime.sync_await._sync_await"
    )
