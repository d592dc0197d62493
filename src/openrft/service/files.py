"""`/v1/files`: upload (multipart), list, retrieve, content, delete.

Bytes go to `$OPENRFT_HOME/files/<id>` (the client's filename is kept in the store for display and never
used as a path); an upload over MAX_UPLOAD_BYTES (512 MiB) is refused while it streams in. A `fine-tune`
upload is checked line by line (`openrft.data.validate.check_upload`, its limits documented there) in a
worker thread, so that the event loop goes on serving other requests; a bad one is refused (HTTP 400)
with the first MAX_PROBLEMS problems (file, line, field, reason) and the count of all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from openrft import ids, paths
from openrft.service.app import store_of
from openrft.service.errors import APIError, bad_request, not_found
from openrft.service.pagination import page
from openrft.service.store import Store, files

router = APIRouter()
PURPOSES = {"fine-tune", "evals", "batch", "assistants", "vision", "user_data"}
CHUNK = 1 << 20
MAX_UPLOAD_BYTES = 512 * 1024**2  # OpenAI's limit for one file (openrft.data.validate.MAX_FILE_BYTES)
MAX_PROBLEMS = 100  # problems listed in a refused upload's error (their total count is given too)


def file_path(file_id: str) -> Path:
    """Where the bytes of `file_id` live; refuses any id that could step outside the files folder."""
    folder = paths.files_dir().resolve()
    if not ids.is_safe(file_id):
        raise not_found("file", file_id)
    path = (folder / file_id).resolve()
    if path.parent != folder:
        raise not_found("file", file_id)
    return path


def resolve(store: Store, file_id: str, *, param: str = "file_id") -> Path:
    """The stored bytes of an uploaded file id (400 naming `param` when there is no such file)."""
    if store.get(files, file_id) is None or not file_path(file_id).is_file():
        raise APIError(400, f"Invalid file '{file_id}': no uploaded file has this id.", param=param,
                       code="invalid_file")
    return file_path(file_id)


def file_object(row: dict) -> dict:
    return {"id": row["id"], "object": "file", "bytes": row["bytes"], "created_at": row["created_at"],
            "filename": row["filename"], "purpose": row["purpose"], "status": "processed",
            "status_details": None, "expires_at": None}


def _check_fine_tune(path: Path, filename: str) -> None:
    """Refuse (400) a fine-tuning file with any problem, listing the first MAX_PROBLEMS and the count."""
    from openrft.data.validate import check_upload

    problems, total = check_upload(path, name=filename, max_problems=MAX_PROBLEMS)
    if not total:
        return
    listed = [{"file": filename, "line": p.line, "field": p.field, "reason": p.reason} for p in problems]
    lines = [f"{filename} line {p['line']}, field {p['field'] or '(row)'}: {p['reason']}" for p in listed[:50]]
    more = f"\n... and {total - len(lines)} more" if total > len(lines) else ""
    raise APIError(400, f"Invalid fine-tuning file {filename}: {total} problem(s)\n" + "\n".join(lines) + more,
                   param="file", code="invalid_file_format", extra={"problems": listed, "problem_count": total})


async def _save(file: UploadFile, partial: Path) -> int:
    """Stream the upload to `partial`; its size in bytes. Refused (400) past MAX_UPLOAD_BYTES."""
    size = 0
    with open(partial, "wb") as out:
        while chunk := await file.read(CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise bad_request(f"Invalid file: it is larger than {MAX_UPLOAD_BYTES:,} bytes "
                                  f"({MAX_UPLOAD_BYTES // 1024**2} MiB), the limit for one file.", param="file")
            await run_in_threadpool(out.write, chunk)
    return size


@router.post("/files")
async def upload(request: Request, file: UploadFile = File(...), purpose: str = Form(...)):
    store = store_of(request)
    if purpose not in PURPOSES:
        raise bad_request(f"Invalid value for 'purpose': '{purpose}' (expected one of {sorted(PURPOSES)}).",
                          param="purpose")
    file_id = ids.file_id()
    target = file_path(file_id)
    partial = target.with_name(target.name + ".partial")
    filename = os.path.basename((file.filename or "").replace("\\", "/"))
    filename = "upload.jsonl" if filename.strip(". ") == "" else filename  # "", ".", ".." name no file
    try:
        size = await _save(file, partial)
        if size == 0:
            raise bad_request(f"Invalid file {filename}: the file is empty.", param="file")
        if purpose == "fine-tune":
            await run_in_threadpool(_check_fine_tune, partial, filename)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    store.insert(files, id=file_id, filename=filename, purpose=purpose, bytes=size)
    stored = store.get(files, file_id)
    assert stored is not None  # inserted above
    return file_object(stored)


@router.get("/files")
def list_files(request: Request, purpose: str | None = None, after: str | None = None,
               limit: int = Query(10_000), order: str = Query("desc", pattern="^(asc|desc)$")):
    store = store_of(request)
    where = [files.c.purpose == purpose] if purpose else []
    rows = store.rows(files, *where, newest_first=order == "desc")
    return page([file_object(row) for row in rows], after=after, limit=limit, extra_ids=True)


@router.get("/files/{file_id}")
def retrieve(request: Request, file_id: str):
    row = store_of(request).get(files, file_id)
    if row is None:
        raise not_found("file", file_id)
    return file_object(row)


@router.get("/files/{file_id}/content")
def content(request: Request, file_id: str):
    row = store_of(request).get(files, file_id)
    if row is None or not file_path(file_id).is_file():
        raise not_found("file", file_id)
    return FileResponse(file_path(file_id), media_type="application/octet-stream", filename=row["filename"])


@router.delete("/files/{file_id}")
def remove(request: Request, file_id: str):
    store = store_of(request)
    if store.get(files, file_id) is None:
        raise not_found("file", file_id)
    file_path(file_id).unlink(missing_ok=True)
    store.delete(files, file_id)
    return {"id": file_id, "object": "file", "deleted": True}
