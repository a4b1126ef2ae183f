"""Readers of the HTTP API: mostly searches and library reads, some questions (locust, headless).

A 503 with Retry-After is the server saying "queue full, come back": the reader waits as told and asks again,
as a well-behaved client does; it is counted as `deferred`, not as an error. Anything else that is not 2xx is an
error, and a request that never got a response is lost."""

import random
import time

from locust import HttpUser, between, events, task

QUESTIONS = ["كم ساعة أمهلت عصائب أهل الحق الحكومة؟", "How many people were killed in the US strike on the Iraqi border?",
             "ما هو موقف الكاظمي من قصف المعسكرات العراقية؟", "Who is the Pentagon spokesman?"]
SEARCHES = ["القصف الأمريكي", "Kataib Hezbollah", "الحدود العراقية السورية", "Ain al-Asad", "الكاظمي"]
DEFERRED = {"n": 0}


@events.quitting.add_listener
def _report(environment, **kwargs):
    print(f"deferred (503 + Retry-After, retried): {DEFERRED['n']}")


class Reader(HttpUser):
    wait_time = between(0.5, 1.5)

    @task(1)
    def ask(self):
        for _ in range(20):
            with self.client.post("/api/ask", json={"question": random.choice(QUESTIONS)}, name="/api/ask",
                                  catch_response=True, timeout=300) as response:
                if response.status_code == 503 and response.headers.get("Retry-After"):
                    DEFERRED["n"] += 1
                    response.success()
                    time.sleep(min(float(response.headers["Retry-After"]), 30))
                    continue
                if response.status_code != 200 or "citations" not in response.text:
                    # Status 0 is no response at all: name the connection error instead of an empty body.
                    response.failure(f"{response.status_code}: {response.error or response.text[:80]}")
                return

    @task(4)
    def retrieve(self):
        self.client.post("/api/retrieve", json={"question": random.choice(SEARCHES), "k": 5}, name="/api/retrieve")

    @task(2)
    def library(self):
        page = self.client.get("/api/articles?limit=10", name="/api/articles").json()
        if page.get("articles"):
            self.client.get(f"/api/articles/{random.choice(page['articles'])['id']}", name="/api/articles/{id}")

    @task(1)
    def health(self):
        self.client.get("/api/health", name="/api/health")
