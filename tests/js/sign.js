#!/usr/bin/env node
// Provider webhook signatures for the omnirouted integration tests,
// computed by the providers' official npm packages.
//
// stdin: one JSON request, or a JSON array of them (one node start for many):
//   {"provider":"twilio","token":"<auth token>","url":"https://host/v1/sms/twilio/main",
//    "params":{"MessageSid":"SM..","Body":"hi"}}
//       -> X-Twilio-Signature value, from twilio.getExpectedTwilioSignature
//          (and checked with twilio.validateRequest)
//   {"provider":"vonage","secret":"<signature secret>","method":"md5hash|md5|sha1|sha256|sha512",
//    "params":{"msisdn":"447700900001","text":"hi",...}}
//       -> value of the `sig` parameter
// stdout: the signature (single request) or a JSON array of signatures.
// Exit 1 with a message on stderr when anything is off.
// `node sign.js --lines`: a co-process answering one JSON line per request
// line, {"sig": "..."} or {"error": "..."} (the suite keeps one running).
//
// Vonage: @vonage/sms exposes only SMS.verifySignature(signature, params,
// secret, algorithm) -> boolean for the inbound "signed webhooks" scheme
// (sort keys, "&key=value" with & and = in values replaced by "_", then
// md5hash: md5(string + secret), md5/sha1/sha256/sha512: HMAC(secret,
// string), hex, case-insensitive compare). It does not return the expected
// signature. The only signing helper in the current SDK,
// @vonage/auth Auth.createSignatureHash, is the scheme for signing *outgoing
// API requests* (it adds api_key and timestamp, URL-encodes with
// URLSearchParams and turns every & and = into "_"), which is not what
// Vonage puts on webhooks. So the candidate signature below is written from
// Vonage's "Signing Messages" documentation, and it is printed only after the
// official SMS.verifySignature accepts it (and rejects a one-character
// change of it), so the value the daemon sees is one the official library
// would accept.
"use strict";

const crypto = require("crypto");

class SignError extends Error {}

function fail(msg) {
  throw new SignError(`sign.js: ${msg}`);
}

let twilio = null;
function twilioSign(req) {
  if (!twilio) twilio = require("twilio");
  if (typeof req.token !== "string" || typeof req.url !== "string")
    fail("twilio needs token and url strings");
  const params = req.params || {};
  const sig = twilio.getExpectedTwilioSignature(req.token, req.url, params);
  if (!twilio.validateRequest(req.token, sig, req.url, params))
    fail("twilio.validateRequest refused twilio.getExpectedTwilioSignature's own value");
  return sig;
}

let vonageSms = null;
let AlgorithmTypes = null;
const VONAGE_METHODS = {
  md5hash: ["md5hash", null],
  md5: ["md5hmac", "md5"],
  sha1: ["sha1hmac", "sha1"],
  sha256: ["sha256hmac", "sha256"],
  sha512: ["sha512hmac", "sha512"],
};

function vonageSign(req) {
  if (!vonageSms) {
    const { SMS } = require("@vonage/sms");
    ({ AlgorithmTypes } = require("@vonage/auth"));
    // verifySignature uses no credentials; the client only needs an auth object.
    vonageSms = new SMS({ apiKey: "unused", apiSecret: "unused" });
  }
  const m = VONAGE_METHODS[req.method];
  if (!m) fail(`unknown vonage method ${JSON.stringify(req.method)}`);
  if (typeof req.secret !== "string") fail("vonage needs a secret string");
  const params = Object.assign({}, req.params || {});
  delete params.sig;
  for (const [k, v] of Object.entries(params))
    if (typeof v !== "string") fail(`vonage param ${k} must be a string`);

  // Vonage docs: sorted keys, "&" + key + "=" + value (& and = in the value -> "_").
  let signed = "";
  for (const k of Object.keys(params).sort())
    signed += "&" + k + "=" + params[k].replace(/[&=]/g, "_");
  const sig =
    m[1] === null
      ? crypto.createHash("md5").update(signed + req.secret).digest("hex")
      : crypto.createHmac(m[1], req.secret).update(signed).digest("hex");

  const algo = AlgorithmTypes[m[0]];
  if (!algo) fail(`@vonage/auth has no AlgorithmTypes.${m[0]}`);
  if (!vonageSms.verifySignature(sig, params, req.secret, algo))
    fail(`@vonage/sms verifySignature refused the ${req.method} signature`);
  const wrong = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
  if (vonageSms.verifySignature(wrong, params, req.secret, algo))
    fail("@vonage/sms verifySignature accepted a wrong signature");
  return sig;
}

function signOne(req) {
  if (!req || typeof req !== "object") fail("request must be a JSON object");
  switch (req.provider) {
    case "twilio":
      return twilioSign(req);
    case "vonage":
      return vonageSign(req);
    default:
      fail(`unknown provider ${JSON.stringify(req.provider)}`);
  }
}

if (process.argv.includes("--lines")) {
  // Co-process mode for the test suite: one JSON request per stdin line,
  // one JSON answer per stdout line: {"sig": ...} or {"error": ...}.
  const rl = require("readline").createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (!line.trim()) return;
    let out;
    try {
      out = { sig: signOne(JSON.parse(line)) };
    } catch (e) {
      out = { error: String((e && e.message) || e) };
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  });
} else {
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (d) => (input += d));
  process.stdin.on("end", () => {
    let req;
    try {
      req = JSON.parse(input);
    } catch (e) {
      process.stderr.write(`sign.js: stdin is not JSON: ${e.message}\n`);
      process.exit(1);
    }
    try {
      if (Array.isArray(req)) process.stdout.write(JSON.stringify(req.map(signOne)) + "\n");
      else process.stdout.write(signOne(req) + "\n");
    } catch (e) {
      process.stderr.write(String((e && e.message) || e) + "\n");
      process.exit(1);
    }
  });
}
