//! The stack's alarms: one on every dead-letter queue's visible messages, one on every
//! queue's oldest message, and one each on every function's errors and throttles, all
//! publishing (and reporting recovery) to the stack's alarm topic.

use crate::support::Stack;

#[tokio::test]
async fn every_queue_and_function_has_its_alarms_on_the_stack_topic() {
    let stack = Stack::load().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&gantry_tests::emulator());
    let topic = stack.output("AlarmTopic").to_owned();
    let alarms = cloudwatch.describe_alarms().max_records(100).send().await.unwrap();
    let ours: Vec<_> = alarms.metric_alarms().iter().filter(|a| a.alarm_actions().contains(&topic)).collect();
    let watched = |metric: &str, dimension: &str| -> Vec<String> {
        ours.iter()
            .filter(|a| a.metric_name() == Some(metric) && a.ok_actions().contains(&topic))
            .filter_map(|a| a.dimensions().iter().find(|d| d.name() == Some(dimension))?.value().map(str::to_owned))
            .collect()
    };
    let queue = |url: &str| url.rsplit('/').next().unwrap().to_owned();
    let sqs = stack.sqs.list_queues().send().await.unwrap();
    let dead_letter_queues: Vec<String> = sqs
        .queue_urls()
        .iter()
        .map(|u| queue(u))
        .filter(|name| {
            name.contains("DeadLetter") && watched("ApproximateNumberOfMessagesVisible", "QueueName").contains(name)
        })
        .collect();
    assert_eq!(
        dead_letter_queues.len(),
        3,
        "the events, deploy-jobs and notifications dead-letter queues: {dead_letter_queues:?}"
    );
    let queues = ["EventsQueueUrl", "DeployJobsQueueUrl", "NotificationsQueueUrl"].map(|o| queue(stack.output(o)));
    let aged = watched("ApproximateAgeOfOldestMessage", "QueueName");
    assert!(queues.iter().all(|q| aged.contains(q)), "{queues:?} in {aged:?}");
    let functions = [
        "ApiFunctionName",
        "WebhooksFunctionName",
        "IngestFunctionName",
        "DeployerFunctionName",
        "NotifierFunctionName",
    ]
    .map(|o| stack.output(o).to_owned());
    for metric in ["Errors", "Throttles"] {
        let alarmed = watched(metric, "FunctionName");
        assert!(functions.iter().all(|f| alarmed.contains(f)), "{metric}: {functions:?} in {alarmed:?}");
    }
}
