"""``klip cloud``: the user's side of the AWS engine (Step Functions + ECS Fargate).

- :mod:`~klippers.cloud.clients`: boto3 clients, error types, bucket and video from flags.
- :mod:`~klippers.cloud.warehouse`: upload inputs, check them, download shorts.
- :mod:`~klippers.cloud.executions`: find the state machine; start, list, stop, describe runs.
- :mod:`~klippers.cloud.logs`: state machine and Fargate log lines of a run.
- :mod:`~klippers.cloud.cost`: the cost and latency model of ``klip cloud estimate``.
- :mod:`~klippers.cloud.cli`: the click commands.

The infrastructure (``infra/``) never imports this package: it shares only the pure
modules :mod:`klippers.contract`, :mod:`klippers.aws` and :mod:`klippers.statemachine`.
"""
