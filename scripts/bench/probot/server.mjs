// Probot under the same load as Ferry: createNodeMiddleware on a bare
// node:http server, one app subscribed to push (it persists nothing).
import http from "node:http";
import { Probot, createNodeMiddleware } from "probot";

const port = Number(process.env.PORT);
const probot = new Probot({
  appId: 1,
  privateKey: process.env.PRIVATE_KEY,
  secret: process.env.WEBHOOK_SECRET,
  logLevel: "fatal",
});
const app = (app) => {
  app.on("push", async () => {});
};
const middleware = await createNodeMiddleware(app, { probot, webhooksPath: "/webhook" });
http.createServer(middleware).listen(port, "127.0.0.1", () => console.log(`probot listening on ${port}`));
