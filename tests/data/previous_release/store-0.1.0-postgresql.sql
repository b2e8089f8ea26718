-- The DDL blindgate 0.1.0 (commit 6b74828) ran on an empty PostgreSQL store (make_store.py).
CREATE TABLE gw_payments (
	payment_id VARCHAR(40) NOT NULL, 
	acquirer_id VARCHAR(64) NOT NULL, 
	payment_request_id VARCHAR(64) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	wallet_id VARCHAR(64) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	amount BIGINT NOT NULL, 
	wallet_currency VARCHAR(3) NOT NULL, 
	wallet_amount BIGINT NOT NULL, 
	quote_id VARCHAR(40) NOT NULL, 
	fx_rate VARCHAR(40) NOT NULL, 
	quote_expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	result_code VARCHAR(40) NOT NULL, 
	pseudonym VARCHAR(80), 
	customer_sealed TEXT, 
	wallet_payment_id VARCHAR(64), 
	notify_url VARCHAR(1024), 
	refunded BIGINT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (payment_id), 
	CONSTRAINT uq_gw_payment_request UNIQUE (acquirer_id, payment_request_id)
);

CREATE INDEX ix_gw_payments_pseudonym ON gw_payments (pseudonym);

CREATE TABLE gw_refunds (
	refund_id VARCHAR(40) NOT NULL, 
	acquirer_id VARCHAR(64) NOT NULL, 
	refund_request_id VARCHAR(64) NOT NULL, 
	payment_id VARCHAR(40) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	amount BIGINT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	result_code VARCHAR(40) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (refund_id), 
	CONSTRAINT uq_gw_refund_request UNIQUE (acquirer_id, refund_request_id)
);

CREATE INDEX ix_gw_refunds_payment_id ON gw_refunds (payment_id);

CREATE TABLE gw_notifications (
	payment_id VARCHAR(40) NOT NULL, 
	acquirer_id VARCHAR(64) NOT NULL, 
	body TEXT NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	delivered_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (payment_id)
);

CREATE INDEX ix_gw_notifications_next_at ON gw_notifications (next_at);

CREATE TABLE gw_risk_payers (
	wallet_id VARCHAR(64) NOT NULL, 
	pseudonym VARCHAR(80) NOT NULL, 
	checks BIGINT NOT NULL, 
	PRIMARY KEY (wallet_id, pseudonym)
);

CREATE TABLE gw_refund_shares (
	refund_id VARCHAR(40) NOT NULL, 
	wallet_amount BIGINT NOT NULL, 
	PRIMARY KEY (refund_id)
);

CREATE TABLE gw_cancel_holds (
	payment_id VARCHAR(40) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (payment_id)
);

CREATE TABLE gw_order_codes (
	payment_id VARCHAR(40) NOT NULL, 
	acquirer_id VARCHAR(64) NOT NULL, 
	payment_request_id VARCHAR(64) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	code_value VARCHAR(64) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	amount BIGINT NOT NULL, 
	notify_url VARCHAR(1024), 
	order_summary TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	wallet_id VARCHAR(64), 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (payment_id), 
	CONSTRAINT uq_gw_order_code_request UNIQUE (acquirer_id, payment_request_id), 
	UNIQUE (code_value)
);

CREATE INDEX ix_gw_order_codes_due ON gw_order_codes (status, expires_at);

CREATE TABLE ledger_entries (
	id BIGSERIAL NOT NULL, 
	event_key VARCHAR(200) NOT NULL, 
	event_type VARCHAR(16) NOT NULL, 
	payment_id VARCHAR(128), 
	business_date DATE NOT NULL, 
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	acquirer_id VARCHAR(64), 
	wallet_id VARCHAR(64), 
	currency VARCHAR(3), 
	amount BIGINT, 
	wallet_currency VARCHAR(3), 
	wallet_amount BIGINT, 
	fx_rate VARCHAR(40), 
	quote_id VARCHAR(64), 
	acquirer_fee BIGINT, 
	wallet_fee BIGINT, 
	batch_id VARCHAR(64), 
	PRIMARY KEY (id), 
	UNIQUE (event_key)
);

CREATE INDEX ix_ledger_entries_business_date ON ledger_entries (business_date);

CREATE INDEX ix_ledger_entries_payment_id ON ledger_entries (payment_id);

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger rows are immutable: post a correcting entry instead'; END $$;

CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE TABLE ledger_days (
	business_date DATE NOT NULL, 
	closed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (business_date)
);

CREATE TABLE ledger_batches (
	batch_id VARCHAR(64) NOT NULL, 
	business_date DATE NOT NULL, 
	partner_id VARCHAR(64) NOT NULL, 
	role VARCHAR(8) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	transaction_count INTEGER NOT NULL, 
	net_amount BIGINT NOT NULL, 
	PRIMARY KEY (batch_id), 
	CONSTRAINT ledger_batches_one_per_day UNIQUE (business_date, partner_id, role, currency)
);

CREATE INDEX ix_ledger_batches_business_date ON ledger_batches (business_date);

CREATE TABLE ledger_lines (
	id BIGSERIAL NOT NULL, 
	entry_id BIGINT NOT NULL, 
	owner VARCHAR(64) NOT NULL, 
	kind VARCHAR(24) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	bucket VARCHAR(8) NOT NULL, 
	amount BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ledger_lines_bucket CHECK (bucket IN ('pending', 'posted')), 
	CONSTRAINT ledger_lines_nonzero CHECK (amount <> 0), 
	FOREIGN KEY(entry_id) REFERENCES ledger_entries (id)
);

CREATE INDEX ix_ledger_lines_entry_id ON ledger_lines (entry_id);

CREATE INDEX ledger_lines_account ON ledger_lines (owner, currency, kind);

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger rows are immutable: post a correcting entry instead'; END $$;

CREATE TRIGGER ledger_lines_immutable BEFORE UPDATE OR DELETE ON ledger_lines FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
