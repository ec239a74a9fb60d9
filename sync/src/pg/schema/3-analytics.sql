ALTER TABLE site ADD COLUMN district text;
CREATE TABLE analyst (role name PRIMARY KEY, district text);
CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS 'Dữ liệu cho cán bộ phân tích: mỗi người chỉ thấy các cơ sở thuộc huyện của mình';
CREATE VIEW analytics.sites AS
    SELECT s.site, s.district, d.value->>'name' AS name, d.value->>'commune' AS commune
    FROM site s LEFT JOIN doc d ON d.site = s.site AND d.kind = 'site'
    WHERE EXISTS (SELECT 1 FROM analyst a WHERE a.role = current_user AND (a.district IS NULL OR a.district = s.district));
COMMENT ON VIEW analytics.sites IS 'Các cơ sở cách ly';
COMMENT ON COLUMN analytics.sites.site IS 'Mã cơ sở';
COMMENT ON COLUMN analytics.sites.district IS 'Huyện/thành phố';
COMMENT ON COLUMN analytics.sites.name IS 'Tên khu cách ly';
COMMENT ON COLUMN analytics.sites.commune IS 'Xã/phường/thị trấn';
CREATE VIEW analytics.people AS
    SELECT v.site, v.district, d.value->>'id' AS person_id, d.value->>'full_name' AS full_name,
        (d.value->>'birth_year')::int AS birth_year, d.value->>'phone' AS phone,
        CASE WHEN char_length(d.value->>'id_number') > 4
            THEN repeat('•', char_length(d.value->>'id_number') - 4) || right(d.value->>'id_number', 4)
            ELSE d.value->>'id_number' END AS id_number,
        d.value->>'room' AS room, (d.value->>'quarantine_start')::date AS quarantine_start,
        (d.value->>'quarantine_end')::date AS quarantine_end, d.value->>'status' AS status,
        d.value->>'category' AS category, (d.value->>'worker')::boolean AS worker,
        (d.value->>'child')::boolean AS child, (d.value->>'pregnant')::boolean AS pregnant,
        (d.value->>'foreigner')::boolean AS foreigner
    FROM doc d JOIN analytics.sites v ON v.site = d.site WHERE d.kind = 'person';
COMMENT ON VIEW analytics.people IS 'Người cách ly';
COMMENT ON COLUMN analytics.people.site IS 'Mã cơ sở';
COMMENT ON COLUMN analytics.people.district IS 'Huyện/thành phố';
COMMENT ON COLUMN analytics.people.person_id IS 'Mã hồ sơ';
COMMENT ON COLUMN analytics.people.full_name IS 'Họ và tên';
COMMENT ON COLUMN analytics.people.birth_year IS 'Năm sinh';
COMMENT ON COLUMN analytics.people.phone IS 'Số điện thoại';
COMMENT ON COLUMN analytics.people.id_number IS 'Số CMND/CCCD (che, trừ 4 số cuối)';
COMMENT ON COLUMN analytics.people.room IS 'Phòng';
COMMENT ON COLUMN analytics.people.quarantine_start IS 'Ngày bắt đầu cách ly';
COMMENT ON COLUMN analytics.people.quarantine_end IS 'Ngày kết thúc cách ly';
COMMENT ON COLUMN analytics.people.status IS 'Tình trạng (in_quarantine, released, converted_f0, transferred)';
COMMENT ON COLUMN analytics.people.category IS 'Phân loại (f0, f1, f2, …)';
COMMENT ON COLUMN analytics.people.worker IS 'Công nhân';
COMMENT ON COLUMN analytics.people.child IS 'Trẻ em';
COMMENT ON COLUMN analytics.people.pregnant IS 'Phụ nữ mang thai';
COMMENT ON COLUMN analytics.people.foreigner IS 'Người nước ngoài';
CREATE VIEW analytics.declarations AS
    SELECT v.site, v.district, d.value->>'person_id' AS person_id, (d.value->>'slot')::timestamp AS slot,
        (d.value->>'submitted_at')::timestamptz AS submitted_at, (d.value->>'on_time')::boolean AS on_time,
        d.value->>'channel' AS channel, (d.value->>'temperature')::float8 AS temperature,
        (d.value->>'spo2')::int AS spo2, d.value->'symptoms' AS symptoms
    FROM doc d JOIN analytics.sites v ON v.site = d.site WHERE d.kind = 'declaration';
COMMENT ON VIEW analytics.declarations IS 'Khai báo y tế';
COMMENT ON COLUMN analytics.declarations.person_id IS 'Mã hồ sơ người khai báo';
COMMENT ON COLUMN analytics.declarations.slot IS 'Lượt khai báo (giờ của cơ sở)';
COMMENT ON COLUMN analytics.declarations.submitted_at IS 'Thời điểm gửi';
COMMENT ON COLUMN analytics.declarations.on_time IS 'Đúng giờ';
COMMENT ON COLUMN analytics.declarations.channel IS 'Kênh (web, sms, staff)';
COMMENT ON COLUMN analytics.declarations.temperature IS 'Nhiệt độ (°C)';
COMMENT ON COLUMN analytics.declarations.spo2 IS 'SpO2 (%)';
COMMENT ON COLUMN analytics.declarations.symptoms IS 'Triệu chứng';
CREATE VIEW analytics.alerts AS
    SELECT v.site, v.district, d.value->>'id' AS alert_id, d.value->>'kind' AS kind,
        d.value->>'severity' AS severity, d.value->>'state' AS state, d.value->>'person_id' AS person_id,
        (d.value->>'raised_at')::timestamptz AS raised_at, (d.value->>'acknowledged_at')::timestamptz AS acknowledged_at,
        (d.value->>'resolved_at')::timestamptz AS resolved_at
    FROM doc d JOIN analytics.sites v ON v.site = d.site WHERE d.kind = 'alert';
COMMENT ON VIEW analytics.alerts IS 'Cảnh báo';
COMMENT ON COLUMN analytics.alerts.kind IS 'Loại cảnh báo';
COMMENT ON COLUMN analytics.alerts.severity IS 'Mức độ (warning, severe)';
COMMENT ON COLUMN analytics.alerts.state IS 'Trạng thái (open, acknowledged, resolved)';
COMMENT ON COLUMN analytics.alerts.raised_at IS 'Thời điểm phát sinh';
COMMENT ON COLUMN analytics.alerts.acknowledged_at IS 'Thời điểm xác nhận';
COMMENT ON COLUMN analytics.alerts.resolved_at IS 'Thời điểm xử lý xong';
CREATE VIEW analytics.samplings AS
    SELECT v.site, v.district, d.value->>'person_id' AS person_id, (d.value->>'round')::int AS round,
        (d.value->>'sampled_on')::date AS sampled_on, d.value->>'result' AS result,
        (d.value->>'result_at')::timestamptz AS result_at
    FROM doc d JOIN analytics.sites v ON v.site = d.site WHERE d.kind = 'sample';
COMMENT ON VIEW analytics.samplings IS 'Lấy mẫu xét nghiệm';
COMMENT ON COLUMN analytics.samplings.round IS 'Lần lấy mẫu';
COMMENT ON COLUMN analytics.samplings.sampled_on IS 'Ngày lấy mẫu';
COMMENT ON COLUMN analytics.samplings.result IS 'Kết quả (pending, negative, positive)';
CREATE VIEW analytics.zone_reports AS
    SELECT v.site, v.district, (d.value->>'date')::date AS day, d.value->>'confirmed_by' AS confirmed_by,
        (d.value->>'confirmed_at')::timestamptz AS confirmed_at,
        (d.value->'figures'->>'in_quarantine')::int AS in_quarantine, (d.value->'figures'->>'admitted')::int AS admitted,
        (d.value->'figures'->>'converted_f0')::int AS converted_f0, (d.value->'figures'->>'released')::int AS released,
        d.value->'figures' AS figures
    FROM doc d JOIN analytics.sites v ON v.site = d.site WHERE d.kind = 'zonereport';
COMMENT ON VIEW analytics.zone_reports IS 'Báo cáo ngày của khu cách ly (đã được trưởng khu xác nhận)';
COMMENT ON COLUMN analytics.zone_reports.day IS 'Ngày báo cáo';
COMMENT ON COLUMN analytics.zone_reports.confirmed_by IS 'Người xác nhận';
COMMENT ON COLUMN analytics.zone_reports.in_quarantine IS 'Số người đang cách ly';
COMMENT ON COLUMN analytics.zone_reports.admitted IS 'Số người tiếp nhận trong ngày';
COMMENT ON COLUMN analytics.zone_reports.converted_f0 IS 'F1 chuyển F0 trong ngày';
COMMENT ON COLUMN analytics.zone_reports.released IS 'Số người hoàn thành cách ly';
COMMENT ON COLUMN analytics.zone_reports.figures IS 'Mọi số liệu của báo cáo';
