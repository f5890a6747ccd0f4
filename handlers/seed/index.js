'use strict';
// The seed design's thumbnail function, rebuilt from its published behaviour so the harness can measure what that
// design loses next to ours. Its flaws are the point, kept on purpose (do not fix them here):
// - only Records[0] of an SQS batch is processed, and that message is deleted by the handler itself; the function
//   then returns normally, so the event source mapping deletes the rest of the batch without output;
// - the S3 notification body is read as `Records[0]`: an s3:TestEvent (no Records) throws, so it is retried and
//   dead-lettered after maxReceiveCount;
// - object keys are used as they arrive (not URL-decoded): "a b.jpg" arrives as "a+b.jpg" and is not found;
// - thumbnails go to `thumbnails/<width>/<file name>` in the same bucket, so same-named files in different folders
//   overwrite each other, and every thumbnail is stored as image/jpeg whatever format sharp wrote;
// - widths 50, 150 and 300 with fit "contain", each made by its own sharp pipeline from the original bytes.
// Clients take region, credentials and endpoint from the environment (AWS_ENDPOINT_URL on the emulator).

const { S3Client, GetObjectCommand, PutObjectCommand } = require('@aws-sdk/client-s3');
const { SQSClient, DeleteMessageCommand, GetQueueUrlCommand } = require('@aws-sdk/client-sqs');
const sharp = require('sharp');

const WIDTHS = [50, 150, 300];
const OUTPUT_PREFIX = 'thumbnails';

const s3 = new S3Client({});
const sqs = new SQSClient({});

// The queue the record came from: QUEUE_URL when the stack sets it, else looked up from the record's ARN.
async function queueUrlOf(record) {
  if (process.env.QUEUE_URL) return process.env.QUEUE_URL;
  const [, , , , account, name] = String(record.eventSourceARN).split(':');
  const found = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  return found.QueueUrl;
}

function fileNameOf(key) {
  return key.split('/').pop();
}

async function makeThumbnail(bucket, fileName, original, width) {
  const body = await sharp(original).resize({ width, fit: 'contain' }).toBuffer();
  const key = `${OUTPUT_PREFIX}/${width}/${fileName}`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'image/jpeg' }));
  return key;
}

exports.handler = async (event) => {
  const record = event.Records[0];
  const notification = JSON.parse(record.body);
  const s3Record = notification.Records[0]; // throws on s3:TestEvent, which has no Records
  const bucket = s3Record.s3.bucket.name;
  const key = s3Record.s3.object.key;

  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const original = Buffer.from(await object.Body.transformToByteArray());
  const written = await Promise.all(WIDTHS.map((width) => makeThumbnail(bucket, fileNameOf(key), original, width)));
  console.log(`thumbnails of s3://${bucket}/${key}: ${written.join(', ')}`);

  await sqs.send(new DeleteMessageCommand({ QueueUrl: await queueUrlOf(record), ReceiptHandle: record.receiptHandle }));
};
