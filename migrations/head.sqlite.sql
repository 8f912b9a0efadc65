CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE devices (
	id INTEGER NOT NULL, 
	make TEXT NOT NULL, 
	model TEXT NOT NULL, 
	CONSTRAINT pk_devices PRIMARY KEY (id), 
	CONSTRAINT uq_devices_make_model UNIQUE (make, model)
);
CREATE INDEX ix_devices_make_lower ON devices (lower(make));
CREATE INDEX ix_devices_model_lower ON devices (lower(model));
CREATE TABLE roots (
	id INTEGER NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	path TEXT NOT NULL, 
	added_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, 
	last_scan_at DATETIME, 
	CONSTRAINT pk_roots PRIMARY KEY (id), 
	CONSTRAINT uq_roots_host_path UNIQUE (host, path)
);
CREATE TABLE photos (
	id INTEGER NOT NULL, 
	root_id INTEGER NOT NULL, 
	rel_path TEXT NOT NULL, 
	size BIGINT NOT NULL, 
	mtime_ns BIGINT NOT NULL, 
	sha256 VARCHAR(64), 
	format VARCHAR(16), 
	width INTEGER, 
	height INTEGER, 
	orientation INTEGER, 
	captured_at DATETIME, 
	captured_from VARCHAR(32), 
	subsec VARCHAR(16), 
	utc_offset VARCHAR(6), 
	offset_from VARCHAR(32), 
	captured_at_utc DATETIME, 
	time_source VARCHAR(16), 
	time_zone VARCHAR(64), 
	device_id INTEGER, 
	lens_model TEXT, 
	serial TEXT, 
	iso INTEGER, 
	exposure_time FLOAT, 
	f_number FLOAT, 
	focal_length FLOAT, 
	software TEXT, 
	warnings TEXT, 
	error TEXT, 
	first_seen DATETIME NOT NULL, 
	last_scanned DATETIME NOT NULL, sort_time DATETIME, place_id INTEGER CONSTRAINT fk_photos_place_id_places REFERENCES places (id), blake2b VARCHAR(64), read_by VARCHAR(40), 
	CONSTRAINT pk_photos PRIMARY KEY (id), 
	CONSTRAINT fk_photos_device_id_devices FOREIGN KEY(device_id) REFERENCES devices (id), 
	CONSTRAINT fk_photos_root_id_roots FOREIGN KEY(root_id) REFERENCES roots (id) ON DELETE CASCADE, 
	CONSTRAINT uq_photos_root_id_rel_path UNIQUE (root_id, rel_path)
);
CREATE INDEX ix_photos_captured_at ON photos (captured_at);
CREATE INDEX ix_photos_captured_at_utc ON photos (captured_at_utc);
CREATE INDEX ix_photos_device_captured ON photos (device_id, captured_at);
CREATE INDEX ix_photos_sha256 ON photos (sha256);
CREATE TABLE gps_positions (
	photo_id INTEGER NOT NULL, 
	latitude FLOAT, 
	longitude FLOAT, 
	altitude FLOAT, 
	gps_time_utc DATETIME, 
	CONSTRAINT pk_gps_positions PRIMARY KEY (photo_id), 
	CONSTRAINT fk_gps_positions_photo_id_photos FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
);
CREATE INDEX ix_gps_positions_latitude_longitude ON gps_positions (latitude, longitude);
CREATE TABLE raw_tags (
	photo_id INTEGER NOT NULL, 
	tags TEXT NOT NULL, 
	CONSTRAINT pk_raw_tags PRIMARY KEY (photo_id), 
	CONSTRAINT fk_raw_tags_photo_id_photos FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
);
CREATE TABLE places (
	id INTEGER NOT NULL, 
	country_code VARCHAR(2) NOT NULL, 
	country TEXT NOT NULL, 
	region TEXT NOT NULL, 
	city TEXT NOT NULL, 
	CONSTRAINT pk_places PRIMARY KEY (id), 
	CONSTRAINT uq_places_country_code_country_region_city UNIQUE (country_code, country, region, city)
);
CREATE INDEX ix_photos_sort_time ON photos (sort_time);
CREATE INDEX ix_photos_place_id ON photos (place_id);
CREATE INDEX ix_photos_blake2b ON photos (blake2b);
CREATE INDEX ix_photos_device_sort ON photos (device_id, sort_time);
INSERT INTO alembic_version (version_num) VALUES ('0004');
