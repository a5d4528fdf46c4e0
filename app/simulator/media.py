"""Graph media endpoints: upload, look up, delete, and the signed download URL they hand out."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.simulator.graph import authorised, injected_fault, refuse, unknown_object
from app.simulator.mediastore import DOWNLOAD_PATH
from app.simulator.state import current_simulator
from app.whatsapp.errors import MediaError
from app.whatsapp.media import DOCUMENT_MAX_BYTES, check_media

bp = Blueprint("media", __name__)

UPLOAD_LIMIT_BYTES = DOCUMENT_MAX_BYTES + 1024 * 1024
"""Largest upload request read: the largest media (a document) plus room for the form."""


@bp.app_errorhandler(413)
def too_large(_error):
    """An upload past the limit, refused as Meta refuses media too large."""
    return refuse(131053, f"Upload larger than {UPLOAD_LIMIT_BYTES} bytes")


@bp.post("/<version>/<phone_number_id>/media")
def upload_media(version: str, phone_number_id: str):
    """Store an uploaded file for this number and answer its media id."""
    sim = current_simulator()
    if not authorised():
        return refuse(190, "Invalid OAuth access token")
    if phone_number_id != sim.config.phone_number_id:
        return unknown_object(phone_number_id)
    if request.form.get("messaging_product") != "whatsapp":
        return refuse(100, "Param messaging_product must be 'whatsapp'")
    upload = request.files.get("file")
    if upload is None:
        return refuse(100, "Param file is required (multipart/form-data)")
    injected = injected_fault()
    if injected is not None:
        return injected
    content = upload.read()
    mime_type = request.form.get("type") or upload.mimetype
    try:
        checked = check_media(content, mime_type)
    except MediaError as exc:
        return refuse(131053, str(exc))
    media = sim.media.put(content, checked.mime_type, phone_number_id, upload.filename)
    return jsonify({"id": media.id})


def owned_media(media_id: str):
    """The media, or the error Meta gives for a missing one or another number's."""
    if not authorised():
        return None, refuse(190, "Invalid OAuth access token")
    media = current_simulator().media.get(media_id)
    owner = request.args.get("phone_number_id")
    if media is None or (owner and owner != media.phone_number_id):
        return None, unknown_object(media_id)
    return media, None


@bp.get("/<version>/<media_id>")
def get_media(version: str, media_id: str):
    """A media's metadata and a fresh signed download URL."""
    media, refused = owned_media(media_id)
    if refused is not None:
        return refused
    injected = injected_fault()
    if injected is not None:
        return injected
    return jsonify(
        {
            "messaging_product": "whatsapp",
            "url": current_simulator().media.download_url(request.host_url, media.id),
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": len(media.content),
            "id": media.id,
        }
    )


@bp.delete("/<version>/<media_id>")
def delete_media(version: str, media_id: str):
    """Forget a media."""
    _, refused = owned_media(media_id)
    if refused is not None:
        return refused
    current_simulator().media.delete(media_id)
    return jsonify({"success": True})


@bp.get(DOWNLOAD_PATH)
def download_media():
    """The file behind a signed, unexpired download URL, for the access token's holder."""
    if not authorised():
        return Response("Unauthorized", status=401, mimetype="text/plain")
    media, reason = current_simulator().media.resolve(
        request.args.get("mid", ""), request.args.get("ext", ""), request.args.get("hash", "")
    )
    if media is None:
        return Response(reason, status=404, mimetype="text/plain")
    return Response(media.content, mimetype=media.mime_type)
