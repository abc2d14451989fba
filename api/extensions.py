"""Unbound extension objects; create_app() binds them to an app."""

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_smorest import Api as SmorestApi
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from api.schemas import ErrorSchema


class Base(DeclarativeBase):
    pass


class Api(SmorestApi):
    # Documents the contract's error body; api/errors.py replaces the handler.
    ERROR_SCHEMA = ErrorSchema


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
api = Api()
