"""The three roles' journeys, for bench/load.py (docs/benchmarks.md, "Load").

Each virtual user logs in once through /accounts/login/ as a demo account of its role, then
walks its role's pages with a pause between pages. What to open (patients, the day's sessions,
lots) comes from the JSON file named by LOAD_DATA, written by bench/load.py from the database:
no page exists for the benchmark. A page counts as failed unless it answers 200 as the user who
asked (a redirect to the login or two-factor page is a failure).
"""

import itertools
import json
import os
import random
import time
from datetime import date
from pathlib import Path

from locust import HttpUser, between, events, task
from locust.exception import StopUser

DATA = json.loads(Path(os.environ["LOAD_DATA"]).read_text())
PATIENTS = DATA["patients"]
PHONES = [patient["phone"] for patient in PATIENTS if patient["phone"]] or [""]
PRACTITIONERS = DATA["practitioners"]
DESK = DATA["desk"]
LOTS = DATA["lots"]
THINK = between(*DATA["think"])
STOCK_REPORTS = ["on-hand", "low", "expiring", "consumption", "waste", "valuation"]
# Every request, written at the end for bench/load.py, which works out exact percentiles and
# failures from them: locust's own percentiles are rounded to two significant figures, and its
# CSV is rewritten once a second but not at the end, so it can miss the last second.
TIMES: list[tuple[str, float, float, bool]] = []


@events.request.add_listener
def record_time(request_type, name, response_time, exception=None, **kwargs) -> None:
    # name, milliseconds, when the answer came (seconds since the epoch), whether it failed
    TIMES.append((f"{request_type} {name}", response_time, time.time(), exception is not None))


@events.quitting.add_listener
def write_times(**kwargs) -> None:
    if path := os.environ.get("LOAD_TIMES"):
        Path(path).write_text(json.dumps(TIMES))


class ClinicUser(HttpUser):
    abstract = True
    wait_time = THINK
    role = ""

    def on_start(self) -> None:
        self.username = next(self.accounts)
        self.client.get("/accounts/login/", name="login page")
        token = self.client.cookies.get("csrftoken")
        with self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": DATA["password"],
                "csrfmiddlewaretoken": token,
            },
            allow_redirects=False,
            name="login (POST)",
            catch_response=True,
        ) as answer:
            if answer.status_code != 302 or "/accounts/" in answer.headers.get("Location", ""):
                answer.failure(f"{self.username} not logged in: {answer.status_code}")
                raise StopUser
            answer.success()

    def page(self, path: str, name: str, **params) -> None:
        with self.client.get(path, params=params, name=name, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"answered {answer.status_code}")
            elif "/accounts/" in answer.url:
                answer.failure(f"sent to {answer.url}")
            else:
                answer.success()


class Reception(ClinicUser):
    """The desk: finds patients in the admin by name, phone and date of birth, opens their
    record, and looks at a practitioner's sessions of today."""

    weight = 2
    accounts = itertools.cycle(DATA["accounts"]["Reception"])

    @task(2)
    def patient_list(self) -> None:
        self.page("/admin/patients/patient/", "admin patients")

    @task(3)
    def search_by_name(self) -> None:
        q = random.choice(PATIENTS)["name"]
        self.page("/admin/patients/patient/", "admin patients ?q=name", q=q)

    @task(2)
    def search_by_phone(self) -> None:
        self.page("/admin/patients/patient/", "admin patients ?q=phone", q=random.choice(PHONES))

    @task(2)
    def search_by_date_of_birth(self) -> None:
        q = random.choice(PATIENTS)["born"]
        self.page("/admin/patients/patient/", "admin patients ?q=date of birth", q=q)

    @task(3)
    def patient_change(self) -> None:
        patient = random.choice(PATIENTS)["id"]
        self.page(f"/admin/patients/patient/{patient}/change/", "admin patient change")

    @task(2)
    def sessions_of_the_day(self) -> None:
        practitioner = random.choice(DESK["practitioners"])
        day = date.fromisoformat(practitioner["day"])
        self.page(
            "/admin/treatments/session/",
            "admin sessions, a day and a practitioner",
            scheduled_start__year=day.year,
            scheduled_start__month=day.month,
            scheduled_start__day=day.day,
            practitioner__id__exact=practitioner["id"],
        )

    @task(2)
    def session_change(self) -> None:
        session = random.choice(DESK["sessions"])
        self.page(f"/admin/treatments/session/{session}/change/", "admin session change")


class Practitioner(ClinicUser):
    """A practitioner's day: the day's list, a session's page, the patient's safety page."""

    weight = 2
    accounts = itertools.cycle(DATA["accounts"]["Practitioner"])

    def on_start(self) -> None:
        super().on_start()
        self.day = PRACTITIONERS[self.username]

    @task(3)
    def my_day(self) -> None:
        self.page("/practice/", "practice: my day")

    @task(3)
    def session(self) -> None:
        session = random.choice(self.day["sessions"])
        self.page(f"/practice/sessions/{session}/", "practice: session")

    @task(3)
    def patient_safety(self) -> None:
        patient = random.choice(self.day["patients"])
        self.page(f"/practice/patients/{patient}/", "practice: patient safety")


class Manager(ClinicUser):
    """The manager's reports: the index, every stock report, a CSV, a lot's recall list."""

    weight = 1
    accounts = itertools.cycle(DATA["accounts"]["Manager"])

    @task(1)
    def index(self) -> None:
        self.page("/reports/", "reports")

    @task(6)
    def stock_report(self) -> None:
        report = random.choice(STOCK_REPORTS)
        self.page(f"/reports/stock/{report}/", f"reports: stock {report}")

    @task(1)
    def consumption_csv(self) -> None:
        self.page("/reports/stock/consumption/", "reports: stock consumption CSV", format="csv")

    @task(1)
    def recall(self) -> None:
        lot = random.choice(LOTS)
        self.page(f"/reports/stock/lots/{lot}/recall/", "reports: lot recall")
