import "reflect-metadata";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";

// Tests run on the deterministic cpu backend unless a test selects another.
await tf.setBackend("cpu");
await tf.ready();
