"""A class room in real browsers on two replicas: one instructor and three students. Students
follow the instructor's lesson and step, one breaks away and rejoins, and a posed question's
answers reach the class view. The replicas share the default store (SQLite in the shared work
folder), as replicas on one machine do."""

from __future__ import annotations

import re

import pytest

from bench.app_server import free_port, launch, stop_server, wait_healthy
from tests.e2e.conftest import new_page, wait_for_app
from tests.e2e.russian import check_russian_page

TOKEN = "a-class-token-for-tests"
FOLLOW_TIMEOUT = 60_000  # ms: a limit for a student's page to follow, on a busy machine


@pytest.fixture(scope="module")
def replicas():
    started = []
    try:
        for port in (free_port(), free_port()):
            env = {"TINYFORMERS_INSTRUCTOR_TOKEN": TOKEN}
            started.append((launch(port, env), f"http://127.0.0.1:{port}"))
        for process, url in started:
            wait_healthy(url, process)
        yield [url for _, url in started]
    finally:
        for process, _ in started:
            stop_server(process)


def sidebar(page):
    return page.locator("[data-testid='stSidebar']")


def open_room(teacher, url: str) -> str:
    teacher.goto(f"{url}/class")
    wait_for_app(teacher)
    teacher.get_by_label("Instructor token").fill(TOKEN)
    teacher.get_by_role("button", name="Open the class view").click()
    teacher.get_by_role("button", name="Open a room").click()
    code = teacher.locator(".tf-room-code-large").inner_text(timeout=60_000).strip()
    assert re.fullmatch(r"[A-Z2-9]{5}", code), code
    return code


def join(student, url: str, code: str) -> None:
    student.goto(url)
    wait_for_app(student)
    room = sidebar(student)
    room.get_by_text("Class room").click()
    room.get_by_label("Room code").fill(code.lower())
    room.get_by_label("Room code").press("Enter")
    room.get_by_role("button", name="Join the class").click()
    room.get_by_text(f"Room {code}: you follow your instructor.").wait_for()


def go_to_lesson(teacher, title: str) -> None:
    sidebar(teacher).get_by_role("link", name=re.compile(title)).click()
    wait_for_app(teacher)


def wait_for_path(page, path: str, query: str = "") -> None:
    page.wait_for_url(
        lambda url: url.split("?")[0].endswith(path) and query in url,
        timeout=FOLLOW_TIMEOUT,
        wait_until="commit",  # the page changes its address in place, it loads nothing
    )


def test_a_room_follows_its_instructor_across_replicas(browser, replicas) -> None:
    replica_a, replica_b = replicas
    local = "http://127.0.0.1:"
    teacher = new_page(browser, local)
    code = open_room(teacher, replica_a)
    students = [new_page(browser, local) for _ in range(3)]
    for student, url in zip(students, (replica_b, replica_b, replica_a), strict=True):
        join(student, url, code)

    # the lesson, then a step of its computation
    go_to_lesson(teacher, "Self-attention")
    for student in students:
        wait_for_path(student, "/attention")
    teacher.get_by_role("button", name="Next ▶").click()
    wait_for_app(teacher)
    for student in students:
        wait_for_path(student, "/attention", "att-step=1")  # the second step, by its number

    # one student breaks away, the others follow to the next lesson; she rejoins
    away = students[1]
    sidebar(away).get_by_role("button", name="Break away").click()
    sidebar(away).get_by_role("button", name="Rejoin").wait_for()
    go_to_lesson(teacher, "Multi-head")
    for student in (students[0], students[2]):
        wait_for_path(student, "/multi-head")
    assert "/attention" in away.url
    sidebar(away).get_by_role("button", name="Rejoin").click()
    wait_for_path(away, "/multi-head")

    # a posed question: the students answer, the instructor reveals, the class view counts
    go_to_lesson(teacher, "Self-attention")
    for student in students:
        wait_for_path(student, "/attention")
        wait_for_app(student)
    room = sidebar(teacher)
    room.get_by_role("button", name="Pose").click()
    wait_for_app(teacher)
    for student in students:
        box = student.locator("[class*='st-key-predict-attention-strongest-key']")
        box.get_by_text("Your instructor asks the class").wait_for(timeout=FOLLOW_TIMEOUT)
        box.get_by_role("radio").first.check(force=True)
        box.get_by_role("button", name="Commit my prediction").click()
        box.get_by_text("Your instructor reveals").wait_for()
    room.get_by_role("button", name="Reveal").click()
    wait_for_app(teacher)
    for student in students:
        box = student.locator("[class*='st-key-predict-attention-strongest-key']")
        box.get_by_text("The model's answer").wait_for(timeout=FOLLOW_TIMEOUT)

    sidebar(teacher).get_by_role("link", name="Class view").click()
    wait_for_app(teacher)
    teacher.get_by_text("3 answers so far").wait_for(timeout=FOLLOW_TIMEOUT)
    teacher.locator("[data-testid='stMain'] [data-testid='stDataFrame']").wait_for()
    for page in (teacher, *students):
        assert page.locator("[data-testid='stException']").count() == 0
        assert not page.outside_requests
        page.context.close()


def test_the_class_view_shows_nothing_without_the_token(browser, replicas) -> None:
    page = new_page(browser, replicas[0])
    page.goto(f"{replicas[0]}/class")
    wait_for_app(page)
    page.get_by_label("Instructor token").fill("not-the-token")
    page.get_by_role("button", name="Open the class view").click()
    page.get_by_text("That is not this server's instructor token").wait_for()
    assert page.get_by_role("button", name="Open a room").count() == 0
    assert page.locator("[data-testid='stMain'] [data-testid='stDataFrame']").count() == 0
    page.goto(f"{replicas[0]}/class?lang=ru")  # the token form in Russian
    wait_for_app(page)
    page.locator("[data-testid='stForm']").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    assert check_russian_page(page) == []
    page.context.close()
