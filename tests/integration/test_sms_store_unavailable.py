"""Redis down: the SMS webhooks never answer 200 for what they did not
store (503 store_unavailable, so the provider retries), the replies API
answers 503 store_unavailable and nothing reaches the provider; after Redis
returns the provider's retry is stored."""

import time

from conftest import assert_error, wait_until
from sms_helpers import (post_reply, post_twilio, send_vonage, stored_one, twilio_conversation,
                         twilio_params, vonage_params, vonage_signed)


def test_redis_down_means_503_and_nothing_sent(sms_daemon, rdb, redis_server, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    redis_server.kill()

    tp = twilio_params()
    r = post_twilio(sms_daemon, tp)
    assert_error(r, 503, "store_unavailable")
    vp = vonage_signed(vonage_params())
    assert_error(send_vonage(sms_daemon, vp), 503, "store_unavailable")
    assert_error(post_reply(sms_daemon, conv, "while redis is down"), 503, "store_unavailable")
    time.sleep(0.5)
    assert fake_provider.requests() == []

    redis_server.start()
    # The providers retry; once the daemon has reconnected they are stored.
    wait_until(lambda: post_twilio(sms_daemon, tp).status_code == 200 or None, 10,
               interval=0.2, what="twilio retry accepted after redis came back")
    r = send_vonage(sms_daemon, vp)
    assert r.status_code == 200, r.text
    c = redis_server.client()
    try:
        stored_one(c, tp["MessageSid"])
        stored_one(c, vp["messageId"])
    finally:
        c.close()
