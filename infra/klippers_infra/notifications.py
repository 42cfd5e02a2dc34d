"""Optional execution notifications: an EventBridge rule publishing to an SNS topic."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from klippers.aws import StackNames
from klippers_infra.policies import notification_topic_policy

NOTIFIED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
"""Execution statuses that are published: every way an execution ends."""
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SUBSCRIBER_ARN = re.compile(r"arn:aws[a-z-]*:(sqs|lambda):[a-z0-9-]+:\d{12}:\S+")


def execution_events(state_machine_arn: str) -> dict[str, Any]:
    """EventBridge pattern matching the end of every execution of ``state_machine_arn``."""
    return {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": list(NOTIFIED_STATUSES), "stateMachineArn": [state_machine_arn]},
    }


def subscription(subscriber: str) -> tuple[str, str]:
    """The SNS protocol and endpoint for ``subscriber``: an e-mail address, or the ARN of
    an SQS queue or a Lambda function; anything else is a ValueError naming the config key.
    """
    if _EMAIL.fullmatch(subscriber):
        return "email", subscriber
    if match := _SUBSCRIBER_ARN.fullmatch(subscriber):
        return match.group(1), subscriber
    raise ValueError(
        f"notify: must be an e-mail address or an SQS queue or Lambda function ARN "
        f"(got {subscriber!r})"
    )


class Notifications(pulumi.ComponentResource):
    """An SNS topic that receives every ended execution (the EventBridge event, as JSON).

    ``subscriber`` is subscribed to it: an e-mail address (AWS sends a confirmation
    message first) or an SQS queue or Lambda function ARN, whose own policy must let
    ``sns.amazonaws.com`` deliver from the topic. Only the rule may publish to the topic.
    The topic is not encrypted: EventBridge cannot publish to a topic encrypted with the
    AWS managed SNS key, and the events carry IDs and error messages only.
    """

    topic_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        names: StackNames,
        state_machine_arn: pulumi.Input[str],
        subscriber: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        protocol, endpoint = subscription(subscriber)
        super().__init__("klippers:notifications:Notifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(name, name=names.notifications, opts=child)
        rule = aws.cloudwatch.EventRule(
            name,
            name=names.notifications,
            description=f"Klippers: every ended execution of {names.state_machine}",
            event_pattern=pulumi.Output.from_input(state_machine_arn).apply(
                lambda arn: json.dumps(execution_events(arn))
            ),
            opts=child,
        )
        policy = aws.sns.TopicPolicy(
            f"{name}-publish",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, rule.arn).apply(
                lambda a: json.dumps(notification_topic_policy(a[0], a[1]))
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            name,
            rule=rule.name,
            arn=topic.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        aws.sns.TopicSubscription(
            name, topic=topic.arn, protocol=protocol, endpoint=endpoint, opts=child
        )
        self.topic_arn = topic.arn
        self.register_outputs({"topicArn": self.topic_arn})
