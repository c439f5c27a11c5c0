import json
from notify_helpers import *

def test_smoke(start_daemon, make_config, rdb, tmp_path):
    rec = Receiver().start()
    try:
        cfg = notify_config(make_config(), tmp_path, {
            "webhooks": [{"name": "main", "url": rec.url("main"), "secret_file": secret_file(tmp_path)},
                         {"name": "sl", "url": rec.url("sl"), "format": "slack"}]})
        d = start_daemon(cfg)
        Api(d).online("ana", "bob", "cy")
        conv = post_message(d, "q_ana")
        eid, f = wait_event(rdb, "conversation.assigned", conv)
        print(eid, f)
        hs = rec.wait_hits("main", 1)
        print(hs, hs[0].headers)
        print(json.dumps(hs[0].json, indent=1))
        print(rec.wait_hits("sl", 1)[0].json)
        print(deliveries(rdb))
        print(open(d.log_path).read())
    finally:
        rec.stop()
