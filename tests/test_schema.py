"""The DDL files are the schema's source of truth: on every database, the schema that
ddl/<dialect>.sql creates must be the one wallet/core/schema.py (and each provider's schema.py) queries (tables, columns, types, nullability,
keys, unique constraints, foreign keys, indexes), and `init-db` must be safe to run twice."""
import pytest
import sqlalchemy as sa
from conftest import DATABASES, fresh_database

from wallet.app import create_app
from wallet.core import db, schema
from conftest import init_schema

TYPE_FAMILIES = [  # what a reflected type must be, for what the code declares
    (sa.Numeric, (sa.Numeric, sa.Text)),        # money: NUMERIC(24, 6), or decimal text on SQLite
    (sa.DateTime, (sa.DateTime,)),
    (sa.Boolean, (sa.Boolean, sa.Integer)),     # MySQL BOOLEAN is TINYINT(1)
    (sa.Integer, (sa.Integer,)),
    (sa.Text, (sa.Text,)),
    (sa.String, (sa.String,)),
]


def family(column_type):
    impl = column_type.impl if isinstance(column_type, sa.types.TypeDecorator) else column_type
    return next(allowed for declared, allowed in TYPE_FAMILIES if isinstance(impl, declared))


@pytest.fixture(params=DATABASES)
def schema_engine(request, tmp_path):
    engine = db.make_engine(fresh_database(request.param, tmp_path))
    init_schema(engine)
    yield engine
    engine.dispose()


def test_ddl_matches_the_code(schema_engine):
    inspector = sa.inspect(schema_engine)
    assert sorted(inspector.get_table_names()) == sorted(schema.metadata.tables)
    for table in schema.metadata.sorted_tables:
        reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert list(reflected) == [c.name for c in table.columns], table.name
        for column in table.columns:
            found = reflected[column.name]
            if not (column.primary_key and column.autoincrement is True or
                    column.primary_key and isinstance(column.type, sa.Integer)):
                # (SQLite reports its INTEGER PRIMARY KEY rowid alias as nullable; it is not)
                assert found["nullable"] == column.nullable, f"{table.name}.{column.name}"
            assert isinstance(found["type"], family(column.type)), f"{table.name}.{column.name}"
            length = getattr(column.type, "length", None)
            if length:
                assert found["type"].length == length, f"{table.name}.{column.name}"
            if isinstance(column.type, sa.Numeric) and schema_engine.dialect.name != "sqlite":
                assert (found["type"].precision, found["type"].scale) == (24, 6)
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == [
            c.name for c in table.primary_key]
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)}
        uniques |= {tuple(i["column_names"]) for i in inspector.get_indexes(table.name) if i["unique"]}
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint):
                assert tuple(c.name for c in constraint.columns) in uniques, table.name
        foreign = {(tuple(f["constrained_columns"]), f["referred_table"])
                   for f in inspector.get_foreign_keys(table.name)}
        assert foreign == {((fk.parent.name,), fk.column.table.name) for fk in table.foreign_keys}
        indexes = {tuple(i["column_names"]) for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            assert tuple(c.name for c in index.columns) in indexes, index.name


def test_the_ledger_refuses_a_negative_balance_after(schema_engine):
    from wallet.core import accounts
    with schema_engine.begin() as conn:
        wallet_id = accounts.open_wallet(conn, accounts.create_player(conn, "x"), "EUR")
    with pytest.raises(sa.exc.DBAPIError, match="(?i)check|constraint"):
        with schema_engine.begin() as conn:
            conn.execute(sa.insert(schema.ledger).values(
                wallet_id=wallet_id, provider="admin", op="topup", ref="r", amount=-1,
                balance_after=-1, created_at=schema.utcnow()))


def test_init_db_twice_keeps_the_data(schema_engine, tmp_path):
    url = schema_engine.url.render_as_string(hide_password=False)
    app = create_app({"WALLET_ENV": "sandbox", "SANDBOX_DEMO": "0", "DATABASE_URL": url})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-player", "--name", "x", "--balance", "5"]).exit_code == 0
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0 and result.output.startswith("schema ready on ")
    with schema_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.players)).scalar() == 1
    app.extensions["engine"].dispose()
