//! The UI's words, Vietnamese first with English as a choice [M17]. One table of `(key, vi, en)`;
//! a missing key shows the key itself so it is noticed. SMS texts are written without diacritics so a
//! message fits one GSM 7-bit part (160 characters) instead of a UCS-2 one (70).

/// The language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
    pub fn parse(s: &str) -> Lang {
        if s == "en" {
            Lang::En
        } else {
            Lang::Vi
        }
    }
    pub fn other(self) -> Lang {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }
}

const TEXTS: &[(&str, &str, &str)] = &[
    ("app", "Outpost — Quản lý khu cách ly", "Outpost — Quarantine site"),
    ("lang.switch", "English", "Tiếng Việt"),
    ("nav.dashboard", "Tổng quan", "Dashboard"),
    ("alerts.kind", "Loại cảnh báo", "Kind of alert"),
    ("alerts.all_kinds", "Mọi loại", "Every kind"),
    ("alerts.severe_only", "Chỉ cảnh báo khẩn", "Severe only"),
    ("strip.title", "14 ngày qua", "The last 14 days"),
    ("strip.on_time", "khai báo đúng giờ", "declared on time"),
    ("strip.late", "khai báo muộn", "declared late"),
    ("strip.missed", "không khai báo", "missed"),
    ("strip.none", "chưa đến hạn / ngoài thời gian cách ly", "not due"),
    ("strip.temperature", "đường nhiệt độ cao nhất trong ngày", "the day's highest temperature"),
    ("people.card", "In thẻ QR", "Print the QR card"),
    ("people.send_link", "Gửi liên kết qua SMS", "Send the link by SMS"),
    ("people.link_sent", "Đã xếp tin nhắn gửi liên kết cho", "The link's SMS is queued for"),
    ("people.band", "Vòng đeo tay", "Band"),
    ("card.title", "Thẻ khai báo y tế", "Health declaration card"),
    ("card.scan", "Quét mã để khai báo y tế, hoặc mở liên kết:", "Scan to declare, or open the link:"),
    ("card.times", "Giờ khai báo mỗi ngày", "Declaration times each day"),
    ("card.wifi", "Mạng Wi-Fi của khu", "The site's Wi-Fi"),
    ("card.print", "In", "Print"),
    ("followup.known_present", "Có mặt", "Present"),
    ("followup.known_away", "rời khu", "away"),
    ("followup.known", "Theo vòng đeo tay và xét nghiệm", "From the band and the tests"),
    ("followup.room_all", "Tất cả các phòng", "All rooms"),
    ("act.alert.acknowledge", "Xác nhận cảnh báo", "Alert acknowledged"),
    ("act.alert.acknowledge_group", "Xác nhận cả nhóm cảnh báo", "Alert group acknowledged"),
    ("act.alert.resolve", "Xử lý xong cảnh báo", "Alert resolved"),
    ("act.backup.download", "Tải bản sao lưu", "Backup downloaded"),
    ("act.stick.backup", "Yêu cầu sao lưu vào thẻ USB", "Backup onto the USB stick asked for"),
    ("act.stick.update", "Yêu cầu cập nhật từ thẻ USB", "Update from the USB stick asked for"),
    ("act.band.hand_over", "Giao vòng đeo tay", "Band handed over"),
    ("act.band.register", "Đăng ký vòng đeo tay", "Band registered"),
    ("act.band.state", "Đổi trạng thái vòng", "Band state changed"),
    ("act.declaration.enter", "Nhập khai báo thay người cách ly", "Declaration entered for a person"),
    ("act.followup.save", "Lưu phiếu theo dõi", "Follow-up saved"),
    ("act.login", "Đăng nhập", "Logged in"),
    ("act.mqtt.credential", "Cấp tài khoản thiết bị MQTT", "MQTT device account set"),
    ("act.person.create", "Thêm người cách ly", "Person added"),
    ("act.person.export", "Xuất danh sách", "List exported"),
    ("act.person.geofence", "Đặt vùng cho phép", "Geofence set"),
    ("act.person.import", "Nhập danh sách", "List imported"),
    ("act.person.purge", "Xóa dữ liệu cá nhân", "Personal data erased"),
    ("act.person.search_id_number", "Tìm theo số CMND/CCCD", "Searched by ID number"),
    ("act.person.status", "Đổi tình trạng", "Status changed"),
    ("act.person.update", "Sửa thông tin", "Details changed"),
    ("act.person.view_id_number", "Xem số CMND/CCCD", "ID number viewed"),
    ("act.report.confirm", "Xác nhận báo cáo ngày", "Daily report confirmed"),
    ("act.sample.import", "Nhập kết quả xét nghiệm", "Test results imported"),
    ("act.sample.record", "Ghi nhận lấy mẫu", "Sampling recorded"),
    ("act.sample.result", "Ghi kết quả xét nghiệm", "Test result entered"),
    ("act.scanner.forget", "Bỏ máy quét", "Scanner forgotten"),
    ("act.setup.admin", "Tạo tài khoản quản trị đầu tiên", "First administrator created"),
    ("act.sms.link", "Gửi liên kết khai báo qua SMS", "Link sent by SMS"),
    ("act.sms.custom", "Gửi tin nhắn", "Message sent"),
    ("act.spotcheck.request", "Yêu cầu kiểm tra đột xuất", "Spot check requested"),
    ("act.spotcheck.review", "Duyệt kiểm tra đột xuất", "Spot check reviewed"),
    ("act.user.api_token", "Tạo mã truy cập API", "API token created"),
    ("act.user.api_token_revoke", "Thu hồi mã truy cập API", "API token revoked"),
    ("act.user.create", "Thêm tài khoản", "Account added"),
    ("act.user.update", "Sửa tài khoản", "Account changed"),
    ("nav.menu", "Danh mục", "Menu"),
    ("nav.people", "Người cách ly", "People"),
    ("nav.alerts", "Cảnh báo", "Alerts"),
    ("nav.followup", "Theo dõi hằng ngày", "Daily follow-up"),
    ("nav.outbox", "Tin nhắn SMS", "SMS outbox"),
    ("nav.users", "Tài khoản", "Accounts"),
    ("nav.audit", "Nhật ký", "Audit log"),
    ("nav.logout", "Đăng xuất", "Log out"),
    ("login.title", "Đăng nhập", "Log in"),
    ("login.username", "Tên đăng nhập", "Username"),
    ("login.password", "Mật khẩu", "Password"),
    ("login.submit", "Đăng nhập", "Log in"),
    ("login.failed", "Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password."),
    ("login.locked", "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau", "Too many failed logins. Try again after"),
    ("setup.title", "Thiết lập lần đầu: tạo tài khoản quản trị", "First start: create the administrator account"),
    ("setup.invalid", "Liên kết thiết lập không hợp lệ hoặc đã được dùng.", "This setup link is invalid or was already used."),
    ("setup.display_name", "Họ tên", "Full name"),
    ("setup.password2", "Nhập lại mật khẩu", "Repeat password"),
    ("setup.mismatch", "Hai mật khẩu không khớp.", "The passwords do not match."),
    ("setup.bad_username", "Tên đăng nhập: 3–32 chữ thường, số, dấu . - _", "Username: 3–32 lower-case letters, digits, . - _"),
    ("setup.create", "Tạo tài khoản", "Create account"),
    ("dash.title", "Tổng quan", "Dashboard"),
    ("dash.in_quarantine", "Đang cách ly", "In quarantine"),
    ("dash.slot", "Lượt khai báo", "Declaration round"),
    ("dash.declared", "Đã khai báo", "Declared"),
    ("dash.due", "Đến giờ khai báo", "Due now"),
    ("dash.late", "Trễ (đã nhắc SMS)", "Late (SMS reminder)"),
    ("dash.missing", "Không khai báo", "Missing"),
    ("dash.open_alerts", "Cảnh báo chưa xử lý", "Open alerts"),
    ("dash.live", "Tự động cập nhật", "Live"),
    ("dash.none", "Không có", "None"),
    ("people.title", "Người cách ly", "People in quarantine"),
    ("people.search", "Tìm theo tên, SĐT, phòng, CMND", "Search name, phone, room, ID"),
    ("people.filter", "Lọc", "Filter"),
    ("people.all", "Tất cả", "All"),
    ("people.new", "Thêm người", "Add person"),
    ("people.import", "Nhập danh sách CSV", "Import CSV list"),
    ("people.export", "Xuất CSV", "Export CSV"),
    ("people.count", "người", "people"),
    ("people.edit", "Sửa thông tin", "Edit"),
    ("people.save", "Lưu", "Save"),
    ("people.link", "Liên kết khai báo cá nhân", "Personal declaration link"),
    ("people.show_id", "Xem số CMND/CCCD (được ghi nhật ký)", "Show ID number (audited)"),
    ("people.status_change", "Đổi trạng thái", "Change status"),
    ("people.declarations", "Khai báo y tế", "Health declarations"),
    ("people.declare_for", "Nhập khai báo thay", "Enter a declaration on their behalf"),
    ("people.alerts", "Cảnh báo", "Alerts"),
    ("field.full_name", "Họ và tên", "Full name"),
    ("field.birth_year", "Năm sinh", "Birth year"),
    ("field.phone", "Số điện thoại", "Phone"),
    ("field.gender", "Giới tính", "Gender"),
    ("field.id_number", "Số CMND/CCCD", "ID number (CMND/CCCD)"),
    ("people.id_hint", "Trẻ em dưới 14 tuổi chưa có CCCD: để trống và ghi năm sinh.", "A child under 14 has no CCCD: leave it empty and give the birth year."),
    ("field.address", "Địa chỉ cách ly", "Quarantine address"),
    ("field.room", "Phòng", "Room"),
    ("field.quarantine_start", "Ngày bắt đầu cách ly", "Quarantine start"),
    ("field.quarantine_end", "Ngày kết thúc cách ly", "Quarantine end"),
    ("field.decision_number", "Số Quyết định", "Decision number"),
    ("field.category", "Phân loại", "Category"),
    ("field.flags", "Đối tượng", "Groups"),
    ("field.worker", "Công nhân", "Worker"),
    ("field.child", "Trẻ em", "Child"),
    ("field.pregnant", "Phụ nữ có thai", "Pregnant"),
    ("field.foreigner", "Người nước ngoài", "Foreigner"),
    ("field.status", "Trạng thái", "Status"),
    ("field.note", "Ghi chú", "Note"),
    ("gender.male", "Nam", "Male"),
    ("gender.female", "Nữ", "Female"),
    ("gender.other", "Khác", "Other"),
    ("gender.unknown", "—", "—"),
    ("category.f1", "F1", "F1"),
    ("category.f0", "F0", "F0"),
    ("category.traveller", "Nhập cảnh", "Traveller"),
    ("status.in_quarantine", "Đang cách ly", "In quarantine"),
    ("status.released", "Hoàn thành cách ly", "Released"),
    ("status.transferred", "Chuyển viện", "Transferred to hospital"),
    ("status.converted_f0", "Chuyển F0", "Converted to F0"),
    ("import.title", "Nhập danh sách từ huyện (CSV)", "Import a district list (CSV)"),
    ("import.help", "Tệp CSV UTF-8 (có hoặc không có BOM), phân cách bằng dấu phẩy hoặc chấm phẩy, dòng đầu là tiêu đề cột như: Họ và tên; Năm sinh; Số điện thoại; Giới tính; Số CMND/CCCD; Địa chỉ cách ly; Phòng; Ngày bắt đầu cách ly; Ngày kết thúc cách ly; Số Quyết định; Phân loại; Công nhân; Trẻ em; Phụ nữ có thai; Người nước ngoài.", "A UTF-8 CSV file (with or without BOM), comma or semicolon separated, whose first line names the columns: Họ và tên; Năm sinh; Số điện thoại; Giới tính; Số CMND/CCCD; Địa chỉ cách ly; Phòng; Ngày bắt đầu cách ly; Ngày kết thúc cách ly; Số Quyết định; Phân loại; Công nhân; Trẻ em; Phụ nữ có thai; Người nước ngoài."),
    ("import.file", "Tệp CSV", "CSV file"),
    ("import.check", "Kiểm tra và nhập", "Check and import"),
    ("import.errors", "Tệp có lỗi. Chưa nhập người nào.", "The file has errors. Nobody was imported."),
    ("import.row", "Dòng", "Row"),
    ("import.problem", "Lỗi", "Problem"),
    ("import.valid_rows", "Chỉ nhập các dòng hợp lệ", "Import the valid rows only"),
    ("import.done", "Đã nhập", "Imported"),
    ("import.expired", "Phiên nhập đã hết hạn, vui lòng tải tệp lên lại.", "This import expired; upload the file again."),
    ("decl.title", "Khai báo y tế", "Health declaration"),
    ("decl.for_slot", "Lượt khai báo", "For the round of"),
    ("decl.temperature", "Nhiệt độ (°C)", "Temperature (°C)"),
    ("decl.spo2", "SpO2 (%) nếu có máy đo", "SpO2 (%) if you have a meter"),
    ("decl.symptoms", "Triệu chứng", "Symptoms"),
    ("decl.note", "Ghi chú thêm", "Anything else"),
    ("decl.submit", "Gửi khai báo", "Send declaration"),
    ("decl.kept", "Chưa gửi được: điện thoại không kết nối được với trạm. Khai báo đã được giữ lại và sẽ tự gửi khi có kết nối — hãy giữ trang này mở. Nếu có triệu chứng nặng, hãy gọi hoặc nhắn tin cho trạm ngay.", "Not sent yet: the phone cannot reach the box. The declaration is kept and will be sent by itself once there is a connection — keep this page open. With severe symptoms, call or text the site now."),
    ("decl.thanks", "Đã nhận khai báo. Cảm ơn bạn!", "Declaration received. Thank you!"),
    ("decl.alerted", "Nhân viên y tế đã được báo và sẽ liên hệ với bạn.", "Medical staff have been alerted and will contact you."),
    ("decl.on_time", "Đúng giờ", "On time"),
    ("decl.late", "Trễ", "Late"),
    ("decl.at", "Lúc", "At"),
    ("sym.fever", "Sốt", "Fever"),
    ("sym.cough", "Ho", "Cough"),
    ("sym.sore_throat", "Đau họng", "Sore throat"),
    ("sym.shortness_of_breath", "Khó thở", "Shortness of breath"),
    ("sym.loss_of_taste_or_smell", "Mất vị giác/khứu giác", "Loss of taste or smell"),
    ("sym.fatigue", "Mệt mỏi", "Fatigue"),
    ("sym.diarrhoea", "Tiêu chảy", "Diarrhoea"),
    ("sym.other", "Khác", "Other"),
    ("alerts.title", "Cảnh báo", "Alerts"),
    ("alerts.ack", "Xác nhận", "Acknowledge"),
    ("alerts.resolve", "Đã xử lý", "Resolve"),
    ("alerts.resolution", "Cách xử lý", "How it was resolved"),
    ("alerts.raised", "Lúc", "Raised"),
    ("alerts.escalated", "Đã nhắc lại", "Escalated"),
    ("alert.fever", "Sốt", "Fever"),
    ("alert.low_spo2", "SpO2 thấp", "Low SpO2"),
    ("alert.shortness_of_breath", "Khó thở", "Shortness of breath"),
    ("alert.missing_declaration", "Không khai báo", "Missing declaration"),
    ("state.open", "Chưa xử lý", "Open"),
    ("state.acknowledged", "Đã xác nhận", "Acknowledged"),
    ("state.resolved", "Đã xử lý", "Resolved"),
    ("severity.warning", "Cảnh báo", "Warning"),
    ("severity.severe", "Nghiêm trọng", "Severe"),
    ("followup.title", "Phiếu theo dõi hằng ngày", "Daily follow-up sheet"),
    ("followup.date", "Ngày", "Date"),
    ("followup.on_time", "Khai báo đúng giờ", "Declarations on time"),
    ("followup.max_temp", "Nhiệt độ cao nhất", "Highest temperature"),
    ("followup.presence", "Có mặt", "Presence"),
    ("followup.tests", "Xét nghiệm", "Tests"),
    ("followup.notes", "Ghi chú của nhân viên", "Staff notes"),
    ("outbox.title", "Hộp thư đi (SMS)", "SMS outbox"),
    ("outbox.to", "Đến", "To"),
    ("outbox.purpose", "Mục đích", "Purpose"),
    ("outbox.state", "Trạng thái", "State"),
    ("outbox.attempts", "Số lần gửi", "Attempts"),
    ("outbox.queued", "Chờ gửi", "Queued"),
    ("outbox.sending", "Đang gửi", "Sending"),
    ("outbox.sent", "Đã gửi", "Sent"),
    ("outbox.delivered", "Đã nhận", "Delivered"),
    ("outbox.failed", "Thất bại", "Failed"),
    ("outbox.expired", "Hết hạn (không gửi muộn)", "Expired (not sent late)"),
    ("outbox.lane", "Hàng chờ", "Lane"),
    ("outbox.waiting", "Đang chờ", "Waiting"),
    ("outbox.drained_in", "gửi hết sau", "all sent in"),
    ("outbox.pace", "Tốc độ modem đo được: mỗi tin", "The modem's measured pace: a message every"),
    ("outbox.pace_unknown", "chưa đo được tốc độ", "pace not measured yet"),
    ("outbox.results_late", "Kết quả xét nghiệm sẽ không kịp gửi SMS trong 1 giờ với tốc độ modem hiện tại: thêm modem, hoặc báo kết quả trực tiếp.", "Test results will not all leave by SMS within the hour at the modem's pace: add a modem, or tell people in person."),
    ("purpose.reminder", "Nhắc khai báo", "Reminder"),
    ("purpose.on_duty", "Báo trực", "On duty"),
    ("purpose.custom", "Tin của nhân viên", "From staff"),
    ("purpose.reply", "Trả lời", "Reply"),
    ("purpose.spot_check", "Kiểm tra đột xuất", "Spot check"),
    ("purpose.test_result", "Kết quả xét nghiệm", "Test result"),
    ("purpose.province", "Gửi tỉnh (mất kết nối)", "To the province (link down)"),
    ("nav.inbox", "Tin nhắn đến", "Inbox"),
    ("nav.health", "Tình trạng hộp", "Box health"),
    ("nav.bands", "Vòng đeo tay", "Wristbands"),
    ("health.sightings", "Lượt thấy vòng", "Sightings"),
    ("health.dropped", "Bị bỏ do quá tải", "Dropped (overload)"),
    ("health.adapter", "Bluetooth của hộp", "The box's Bluetooth"),
    ("health.restarts", "lần quét lại", "scan restarts"),
    ("health.no_adapter", "Không dùng", "Not used"),
    ("bands.title", "Kho vòng đeo tay", "Wristband pool"),
    ("bands.band", "Vòng", "Band"),
    ("bands.all", "Tất cả vòng", "All bands"),
    ("bands.id", "Mã vòng", "Band id"),
    ("bands.label", "Số in trên vòng", "Printed number"),
    ("bands.person", "Người đeo", "Worn by"),
    ("bands.battery", "Pin", "Battery"),
    ("bands.place", "Vị trí", "Place"),
    ("bands.last_seen", "Thấy lần cuối", "Last seen"),
    ("bands.scanner", "Máy quét", "Scanner"),
    ("bands.register", "Đăng ký vòng", "Register band"),
    ("bands.low_battery", "Pin yếu", "Low batteries"),
    ("bands.unknown", "Vòng lạ (chưa đăng ký)", "Unknown bands (not registered)"),
    ("bands.unknown_help", "Thiết bị được máy quét thấy nhưng chưa có trong kho; không cảnh báo. Lượt thấy / bị bỏ:", "Devices scanners saw that are not in the pool; never alerted on. Sightings / dropped:"),
    ("bands.hand_over", "Giao vòng cho người cách ly", "Hand over to a person"),
    ("bands.change", "Đổi trạng thái vòng", "Change the band's state"),
    ("bands.history", "Lịch sử vòng", "Band history"),
    ("bands.by", "Người thực hiện", "By"),
    ("bands.sightings", "Lượt thấy trong 1 giờ qua", "Sightings in the last hour"),
    ("bands.strap_open", "Dây đeo bị mở", "Strap open"),
    ("band.stock", "Trong kho", "In stock"),
    ("band.charging", "Đang sạc", "Charging"),
    ("band.ready", "Sẵn sàng", "Ready"),
    ("band.assigned", "Đang đeo", "Assigned"),
    ("band.returned", "Đã thu hồi", "Returned"),
    ("band.disinfecting", "Đang khử khuẩn", "Disinfecting"),
    ("band.faulty", "Hỏng", "Faulty"),
    ("band.lost", "Bị mất", "Lost"),
    ("presence.timeline", "Diễn biến có mặt trong ngày", "Presence during the day"),
    ("presence.none", "Chưa có dữ liệu có mặt cho ngày này.", "No presence recorded for this day."),
    ("presence.present", "Có mặt", "Present"),
    ("presence.unseen", "Tạm không thấy", "Unseen"),
    ("presence.not_covered", "Không được theo dõi (máy quét mất kết nối)", "Not covered (scanner down)"),
    ("presence.away", "Rời khu vực", "Away"),
    ("geo.title", "Vị trí", "Location"),
    ("geo.home", "Cách ly tại nhà", "Home quarantine"),
    ("geo.site", "Vùng của khu cách ly", "The site's geofence"),
    ("geo.none", "Chưa có vùng cho phép (cấu hình vị trí khu, hoặc nhập địa chỉ nhà bên dưới).", "No geofence (configure the site's position, or enter a home below)."),
    ("geo.last", "Vị trí gần nhất", "Last position"),
    ("geo.inside", "Trong vùng", "Inside"),
    ("geo.outside", "Ngoài vùng", "Outside"),
    ("geo.unsure", "Chưa xác định", "Not judged"),
    ("geo.no_position", "Chưa nhận vị trí nào.", "No position yet."),
    ("geo.help", "Cách ly tại nhà: nhập địa chỉ, tọa độ và bán kính (hoặc đứng tại nhà và dùng vị trí điện thoại). Để trống tọa độ để dùng vùng của khu.", "Home quarantine: enter the address, coordinates and radius (or stand at the home and use this phone's position). Leave the coordinates empty for the site's geofence."),
    ("geo.address", "Địa chỉ", "Address"),
    ("geo.latitude", "Vĩ độ", "Latitude"),
    ("geo.longitude", "Kinh độ", "Longitude"),
    ("geo.radius", "Bán kính (m)", "Radius (m)"),
    ("geo.use_phone", "Dùng vị trí của điện thoại này", "Use this phone's position"),
    ("nav.spotchecks", "Kiểm tra đột xuất", "Spot checks"),
    ("spot.title", "Kiểm tra đột xuất", "Spot check"),
    ("spot.list", "Kiểm tra đột xuất", "Spot checks"),
    ("spot.before", "Chụp ảnh khuôn mặt bằng camera điện thoại và gửi trước", "Take a photo of your face with the phone's camera and send it before"),
    ("spot.photo", "Ảnh khuôn mặt", "Face photo"),
    ("spot.locating", "Đang lấy vị trí của điện thoại…", "Getting the phone's position…"),
    ("spot.send", "Gửi", "Send"),
    ("spot.thanks", "Đã nhận ảnh và vị trí. Cảm ơn bạn!", "Photo and position received. Thank you!"),
    ("spot.closed", "Lần kiểm tra này đã được trả lời hoặc đã quá hạn.", "This check was already answered or is past its deadline."),
    ("spot.deadline", "Hạn trả lời", "Deadline"),
    ("spot.request", "Kiểm tra đột xuất", "Spot check now"),
    ("spot.request_room", "Kiểm tra cả phòng", "Check the whole room"),
    ("spot.accept", "Chấp nhận", "Accept"),
    ("spot.reject", "Không chấp nhận", "Reject"),
    ("spot.state.scheduled", "Đã lên lịch", "Scheduled"),
    ("spot.state.sent", "Đang chờ trả lời", "Waiting for an answer"),
    ("spot.state.answered", "Đã trả lời", "Answered"),
    ("spot.state.missed", "Không trả lời", "Missed"),
    ("spot.state.skipped", "Bỏ qua (hộp không chạy lúc đến hạn)", "Skipped (the box was not running when due)"),
    ("spot.review.pending", "Chờ xem xét", "To review"),
    ("spot.answered_at", "Trả lời lúc", "Answered at"),
    ("spot.after", "sau", "after"),
    ("spot.reference", "Ảnh đã chấp nhận trước đây", "A photo accepted before"),
    ("spot.no_reference", "Chưa có ảnh nào được chấp nhận để so sánh", "No accepted photo to compare with yet"),
    ("spot.no_position", "Không có vị trí", "No position"),
    ("spot.review.accepted", "Đã chấp nhận", "Accepted"),
    ("spot.review.rejected", "Không chấp nhận", "Rejected"),
    ("nav.checkin", "Ra vào", "Gate log"),
    ("checkin.title", "Khai báo ra vào khu cách ly", "Entering or leaving the site"),
    ("checkin.poster", "Mã QR ra vào (in và dán ở cổng)", "Gate QR code (print it for the gate)"),
    ("checkin.poster_help", "Mọi người ra vào khu (nhân viên, giao hàng, khách) quét mã này và khai báo họ tên, số điện thoại, mục đích.", "Everyone entering or leaving (staff, deliveries, visitors) scans this code and gives their name, phone and purpose."),
    ("checkin.print", "In", "Print"),
    ("checkin.in", "Vào", "In"),
    ("checkin.out", "Ra", "Out"),
    ("checkin.way", "Vào/Ra", "In/Out"),
    ("checkin.time", "Thời gian", "Time"),
    ("checkin.purpose", "Mục đích", "Purpose"),
    ("checkin.purpose.staff", "Nhân viên", "Staff"),
    ("checkin.purpose.delivery", "Giao hàng", "Delivery"),
    ("checkin.purpose.visit", "Thăm", "Visit"),
    ("checkin.purpose.medical", "Y tế", "Medical"),
    ("checkin.purpose.other", "Khác", "Other"),
    ("checkin.purpose.quarantined", "Người cách ly", "Quarantined"),
    ("checkin.submit", "Gửi", "Send"),
    ("checkin.thanks", "Đã ghi nhận:", "Recorded:"),
    ("checkin.log", "Nhật ký ra vào", "Gate log"),
    ("checkin.scan", "Nhân viên quét mã người cách ly", "Staff: scan a quarantined person's code"),
    ("checkin.record", "Ghi nhận", "Record"),
    ("common.page", "Trang", "Page"),
    ("checkin.search", "Tên hoặc số điện thoại", "Name or phone"),
    ("nav.reports", "Báo cáo ngày", "Daily report"),
    ("report.title", "Báo cáo khu cách ly ngày", "Zone report of"),
    ("report.show", "Xem", "Show"),
    ("report.confirmed", "Đã xác nhận", "Confirmed"),
    ("report.unconfirmed", "Chưa xác nhận", "Not confirmed"),
    ("report.changed", "Số liệu đã thay đổi sau khi xác nhận", "The figures changed since"),
    ("report.confirm", "Xác nhận báo cáo", "Confirm the report"),
    ("report.chart", "30 ngày gần nhất", "The last 30 days"),
    ("report.in_quarantine", "Đang cách ly", "In quarantine"),
    ("report.admitted", "Tiếp nhận", "Admitted"),
    ("report.released", "Hoàn thành cách ly", "Released"),
    ("report.converted", "Chuyển F0", "Converted to F0"),
    ("report.on_time", "Khai báo đúng giờ (%)", "Declarations on time (%)"),
    ("nav.testing", "Xét nghiệm", "Testing"),
    ("test.title", "Xét nghiệm", "Testing"),
    ("test.none", "Chưa lấy mẫu lần nào.", "Not sampled yet."),
    ("test.round", "Lần lấy mẫu", "Round"),
    ("test.next_round", "lần tiếp theo", "the next one"),
    ("test.sampled_on", "Ngày lấy mẫu", "Sampled on"),
    ("test.result", "Kết quả", "Result"),
    ("test.pending", "Chờ kết quả", "Pending"),
    ("test.negative", "Âm tính", "Negative"),
    ("test.positive", "Dương tính", "Positive"),
    ("test.record", "Ghi nhận lấy mẫu", "Record sampling"),
    ("test.recorded", "Đã ghi nhận lấy mẫu:", "Sampling recorded:"),
    ("test.confirm_positive", "Xác nhận kết quả DƯƠNG TÍNH", "Confirm a POSITIVE result"),
    ("test.positive_does", "Người này sẽ được chuyển thành F0, một cảnh báo khẩn được tạo và tin nhắn gửi đến điện thoại trực. Không thể hoàn tác.", "The person will be converted to F0, a severe alert raised and the on-duty phone texted. This cannot be undone."),
    ("test.confirm_positive_button", "Đúng, kết quả dương tính", "Yes, the result is positive"),
    ("test.desk", "Lấy mẫu: quét mã QR hoặc nhập số CMND/CCCD", "Sampling: scan the QR code or type the ID number"),
    ("test.code", "Mã QR hoặc số CMND/CCCD", "QR code or ID number"),
    ("test.scan", "Quét bằng camera", "Scan with the camera"),
    ("test.import", "Nhập kết quả từ danh sách của phòng xét nghiệm", "Import the laboratory's results"),
    ("test.import_help", "Tệp CSV với các cột Số CMND/CCCD, Lần lấy mẫu, Kết quả (Âm tính/Dương tính) và có thể Ngày lấy mẫu. Có dòng lỗi thì không nhập dòng nào. Mỗi kết quả được nhắn tin ngay cho người được xét nghiệm.", "A CSV file with the columns Số CMND/CCCD, Lần lấy mẫu, Kết quả (Âm tính/Dương tính) and optionally Ngày lấy mẫu. With any bad row nothing is imported. Each result is sent to the person by SMS at once."),
    ("test.import_errors", "Danh sách có lỗi. Chưa nhập kết quả nào.", "The list has errors. No result was imported."),
    ("test.imported", "Đã nhập kết quả:", "Results imported:"),
    ("test.unchanged", "đã có từ trước:", "already recorded:"),
    ("test.on_day", "Lấy mẫu ngày", "Samplings of"),
    ("test.by", "Người lấy mẫu", "Sampled by"),
    ("alert.spot_check_missed", "Không trả lời kiểm tra đột xuất", "Spot check not answered"),
    ("alert.scanner_down", "Máy quét mất kết nối", "Scanner down"),
    ("exposure.title", "Danh sách tiếp xúc (vòng đeo tay)", "Exposure list (wristbands)"),
    ("exposure.none", "Chưa có: danh sách được lập khi người này chuyển F0, hoặc khi bấm nút dưới đây.", "None yet: it is made when this person converts to F0, or with the button below."),
    ("exposure.computed", "Lập lúc", "Made at"),
    ("exposure.days", "ngày gần nhất", "days back"),
    ("exposure.people", "người", "people"),
    ("exposure.minutes", "Tổng số phút", "Minutes in all"),
    ("exposure.where", "Ngày: vùng và số phút", "Day: zone and minutes"),
    ("exposure.make", "Lập lại danh sách tiếp xúc", "Make the exposure list again"),
    ("alerts.in_group", "cảnh báo cùng loại", "alerts of this kind"),
    ("alerts.ack_group", "Xác nhận cả nhóm", "Acknowledge all"),
    ("alerts.all", "xem tất cả", "see all"),
    ("alerts.times", "lượt", "times"),
    ("alerts.since", "từ", "since"),
    ("alerts.each", "Từng lượt", "Each one"),
    ("alerts.pick", "Chọn", "Select"),
    ("alerts.ack_picked", "Xác nhận các mục đã chọn", "Acknowledge the selected"),
    ("scanners.title", "Máy quét (gateway và bộ Bluetooth của hộp)", "Scanners (gateways and the box's adapter)"),
    ("scanners.none", "Chưa nghe thấy máy quét nào.", "No scanner heard yet."),
    ("scanners.name", "Máy quét", "Scanner"),
    ("scanners.scanner", "Máy quét", "Scanner"),
    ("scanners.since", "Từ lúc", "Since"),
    ("scanners.report", "Máy tự báo", "Its own report"),
    ("scanners.up", "Hoạt động", "Up"),
    ("scanners.down", "Mất kết nối", "Down"),
    ("scanners.uptime", "chạy", "up"),
    ("scanners.forget", "Gỡ khỏi danh sách", "Forget"),
    ("alert.outside_geofence", "Ra khỏi vùng cách ly", "Outside the geofence"),
    ("alert.test_positive", "Xét nghiệm dương tính", "Positive test"),
    ("alert.band_away", "Rời khu vực (vòng không được thấy)", "Away (band not seen)"),
    ("alert.strap_opened", "Dây đeo bị mở", "Strap opened"),
    ("alert.band_battery_low", "Pin vòng yếu", "Band battery low"),
    ("inbox.title", "Tin nhắn đến", "Incoming SMS"),
    ("inbox.from", "Từ", "From"),
    ("inbox.declaration", "Khai báo qua SMS", "SMS declaration"),
    ("inbox.staff", "Cho nhân viên", "For staff"),
    ("inbox.missing", "Thiếu phần tin", "Parts missing"),
    ("sms.new", "Soạn tin nhắn", "Compose SMS"),
    ("sms.to_selected", "Gửi SMS cho người đã chọn", "SMS the selected people"),
    ("sms.recipients", "Người nhận", "Recipients"),
    ("sms.everyone_in", "Mọi người có trạng thái", "Everyone whose status is"),
    ("sms.template", "Mẫu tin", "Template"),
    ("sms.custom_text", "Nội dung tự soạn (có thể dùng {name}, {room}, {link}, {end})", "Own text (may use {name}, {room}, {link}, {end})"),
    ("sms.language", "Ngôn ngữ của mẫu", "Template language"),
    ("sms.send", "Gửi", "Send"),
    ("sms.queued", "Đã đưa vào hàng đợi gửi:", "Queued for sending:"),
    ("sms.none_template", "Không dùng mẫu", "No template"),
    ("health.title", "Tình trạng hộp", "Box health"),
    ("health.modem", "Modem", "Modem"),
    ("health.no_modem", "Chưa cấu hình modem: tin nhắn chỉ được ghi vào nhật ký.", "No modem configured: messages are only logged."),
    ("health.connected", "Kết nối", "Connected"),
    ("health.registered", "Đăng ký mạng", "Registered"),
    ("health.signal", "Sóng", "Signal"),
    ("health.operator", "Nhà mạng", "Operator"),
    ("health.sim", "SIM", "SIM"),
    ("health.sim_ready", "Sẵn sàng", "Ready"),
    ("health.sim_pin", "Cần mã PIN", "Needs its PIN"),
    ("health.sim_puk", "Bị khóa, cần mã PUK", "Locked: needs its PUK"),
    ("health.last_error", "Lỗi gần nhất", "Last error"),
    ("health.counts", "Đã gửi / thất bại / nhận / báo nhận", "Sent / failed / received / reports"),
    ("health.store", "Dữ liệu trên thẻ nhớ", "Data on the SD card"),
    ("health.outbox", "Tin chờ gửi", "Messages waiting"),
    ("health.problems", "Sự cố", "Problems"),
    ("health.no_problems", "Không có sự cố.", "No problems."),
    ("health.writes_fail", "Hộp không ghi được dữ liệu mới: các khai báo và thay đổi đang bị từ chối. Dữ liệu đã có vẫn xem được.", "The box cannot write new data: declarations and changes are being refused. Existing data can still be read."),
    ("problem.disk_read_only", "Thẻ nhớ đã chuyển sang chỉ đọc (thẻ hỏng hoặc lỗi hệ thống tệp). Sao lưu ngay và thay thẻ.", "The SD card has turned read-only (a failing card or a file-system error). Back up now and replace the card."),
    ("problem.disk_full", "Thẻ nhớ đã đầy: hộp không nhận dữ liệu mới cho đến khi có chỗ trống. Còn", "The SD card is full: the box takes no new data until space is freed. Free"),
    ("problem.disk_low", "Thẻ nhớ sắp đầy: còn", "The SD card is nearly full: free"),
    ("problem.card_wear", "Hộp ghi vào thẻ nhớ nhiều đến mức thẻ sẽ mòn trong chưa đầy một năm", "The box writes so much to the SD card that the card will wear out within a year"),
    ("problem.store_write", "Không ghi được dữ liệu xuống thẻ nhớ", "Data cannot be written to the SD card"),
    ("problem.modem", "Không dùng được modem: tin nhắn SMS đang chờ trong hàng đợi", "The modem cannot be used: SMS wait in the queue"),
    ("problem.adapter", "Không dùng được bộ Bluetooth của hộp: không nghe được vòng đeo tay qua nó", "The box's Bluetooth adapter cannot be used: bands are not heard through it"),
    ("problem.scanner_down", "Máy quét mất kết nối: vòng đeo tay trong vùng của nó không được theo dõi (không có cảnh báo vòng) cho đến khi nó hoạt động lại", "A scanner is down: the bands it watched are not covered (no band alerts) until it is back"),
    ("problem.sms_late", "Kết quả xét nghiệm sẽ không kịp gửi SMS trong 1 giờ với tốc độ modem hiện tại", "Test results will not all leave by SMS within the hour at the modem's pace"),
    ("problem.config", "Tệp cấu hình bị lỗi: hộp đang chạy theo cấu hình hợp lệ gần nhất", "The configuration file is invalid: the box runs on the last configuration that worked"),
    ("health.system", "Hệ thống", "System"),
    ("health.disk", "Thẻ nhớ (còn trống / tổng)", "SD card (free / total)"),
    ("health.memory", "Bộ nhớ (hộp dùng / còn trống / tổng)", "Memory (used by the box / available / total)"),
    ("health.temperature", "Nhiệt độ chip", "Chip temperature"),
    ("health.card_wear", "Ghi vào thẻ nhớ", "Written to the SD card"),
    ("health.card_per_day", "một ngày", "a day"),
    ("health.card_measured", "đo trong", "measured over"),
    ("health.card_measuring", "đang đo (cần 10 phút)", "measuring (takes 10 minutes)"),
    ("health.card_life", "tuổi thọ dự kiến của thẻ", "the card's projected life"),
    ("health.card_years", "năm", "years"),
    ("health.card_cycles", "lần ghi đầy", "full writes"),
    ("health.backup", "Tải bản sao lưu", "Download a backup"),
    ("health.backup_hint", "Một bản sao nhất quán của toàn bộ dữ liệu, lấy trong khi hộp vẫn chạy. Khôi phục bằng lệnh outpost restore --from TỆP.", "A consistent copy of all data, taken while the box runs. Restore it with outpost restore --from FILE."),
    ("stick.title", "Thẻ nhớ USB", "USB stick"),
    ("stick.hint", "Cắm thẻ nhớ USB (FAT, exFAT hoặc ext4) vào hộp rồi bấm. Sao lưu: một bản sao lưu được ghi vào thẻ. Cập nhật: hộp cài gói outpost_<phiên bản>_<kiến trúc>.deb mới nhất ở thư mục gốc của thẻ (sao lưu vào thẻ trước), rồi tự khởi động lại; dữ liệu được giữ nguyên. Rút thẻ khi trang báo xong.", "Plug a USB stick (FAT, exFAT or ext4) into the box, then press. Backup: a backup is written onto the stick. Update: the box installs the newest outpost_<version>_<arch>.deb in the stick's top folder (a backup onto the stick first), then restarts; the data is kept. Take the stick out once this page says done."),
    ("stick.backup", "Sao lưu vào thẻ USB", "Back up to the USB stick"),
    ("stick.update", "Cập nhật từ thẻ USB", "Update from the USB stick"),
    ("stick.waiting", "đang chờ hộp bắt đầu", "waiting for the box to start"),
    ("stick.running", "đang làm", "working"),
    ("stick.done", "xong", "done"),
    ("stick.failed", "không được", "failed"),
    ("users.title", "Tài khoản nhân viên", "Staff accounts"),
    ("users.add", "Thêm tài khoản", "Add account"),
    ("mqtt.denied", "Gói tin bị chặn (sai quyền)", "Packets refused (no right)"),
    ("mqtt.too_large", "Tin quá lớn bị bỏ (vượt giới hạn kích thước)", "Messages dropped as too large"),
    ("mqtt.kind", "Loại thiết bị", "Device kind"),
    ("mqtt.kind_gateway", "Gateway (tên = tên phòng/gateway trong topic)", "Gateway (name = its room/gateway name in topics)"),
    ("mqtt.kind_app", "Ứng dụng của một người", "A person's app"),
    ("mqtt.kind_monitor", "Theo dõi (chỉ đọc tín hiệu vòng)", "Monitor (reads band sightings only)"),
    ("mqtt.kind_other", "Thiết bị khác (topic riêng 1–2 cấp, không đọc được vòng)", "Other (its own one- or two-level topics, no sightings)"),
    ("mqtt.person", "Mã người cách ly (cho ứng dụng)", "Person's id (for an app)"),
    ("mqtt.kinds_help", "Gateway chỉ gửi vào topic mang tên của nó; ứng dụng chỉ gửi vị trí của người được gán vào outpost/position/<tên thiết bị>; thiết bị theo dõi chỉ đọc tín hiệu vòng.", "A gateway publishes only to topics with its own name; an app publishes only its person's position to outpost/position/<device name>; a monitor only reads band sightings."),
    ("mqtt.ports", "Cổng", "Ports"),
    ("health.sync", "Đồng bộ với tỉnh", "Sync with the province"),
    ("health.sync_last", "Lần thành công gần nhất", "Last success"),
    ("health.sync_pending", "Thay đổi chờ gửi", "Changes waiting"),
    ("health.sync_refused", "Tài liệu không gộp được", "Documents that could not be merged"),
    ("health.clock_corrected", "Đồng hồ của hộp đã chỉnh theo giờ của tỉnh", "The box's clock was set to the province's time by"),
    ("login.trust", "Trạm chưa có chứng chỉ tin cậy từ tỉnh: trình duyệt sẽ cảnh báo. Để điện thoại tin trạm, tải chứng chỉ của trạm, đối chiếu mã SHA-256 với quản trị viên của trạm, rồi cài vào điện thoại (Cài đặt › Bảo mật › Cài chứng chỉ).", "The box has no trusted certificate from the province yet: browsers will warn. To make a phone trust the box, download its certificate, check its SHA-256 with the site's administrator, and install it on the phone (Settings › Security › Install a certificate)."),
    ("health.name", "Tên miền của trạm (chứng chỉ tin cậy)", "The site's name (trusted certificate)"),
    ("health.name_until", "hiệu lực đến", "valid until"),
    ("health.name_waiting", "đang chờ tỉnh cấp chứng chỉ", "waiting for the province to obtain its certificate"),
    ("health.name_none", "tỉnh chưa cấp tên miền; trạm dùng chứng chỉ riêng", "the province gives no name; the box serves its own certificate"),
    ("health.reach", "Truy cập từ nhà qua tỉnh", "Reach from home through the province"),
    ("health.reach_up", "đang mở", "open"),
    ("health.reach_down", "chưa kết nối", "not connected"),
    ("health.reach_phones", "lượt điện thoại", "phone connections"),
    ("health.sync_off", "Chưa đăng ký với tỉnh (outpost enroll).", "Not enrolled with the province (outpost enroll)."),
    ("health.tls_failed", "Bắt tay TLS thất bại", "Failed TLS handshakes"),
    ("health.logins_refused", "Đăng nhập bị từ chối", "Logins refused"),
    ("health.overrun", "Tin bị mất khi quá tải", "Messages lost to overload"),
    ("mqtt.connections", "Thiết bị đang kết nối", "Devices connected"),
    ("mqtt.sightings", "Lượt nhận vòng đeo", "Band sightings"),
    ("mqtt.refused", "Tin bị từ chối", "Messages refused"),
    ("mqtt.off", "Máy chủ MQTT đang tắt.", "The MQTT broker is off."),
    ("mqtt.certificate", "Chứng chỉ TLS của hộp", "The box's TLS certificate"),
    (
        "mqtt.certificate_help",
        "Cài tệp này lên gateway và điện thoại để kết nối qua TLS, rồi so dấu vân tay SHA-256.",
        "Install this file on gateways and phones to connect over TLS, and compare the SHA-256 fingerprint.",
    ),
    ("mqtt.devices", "Thiết bị được phép kết nối", "Devices allowed to connect"),
    ("users.role", "Vai trò", "Role"),
    ("users.active", "Đang hoạt động", "Active"),
    ("users.token_expires", "hết hạn", "expires"),
    ("users.token_revoke", "Thu hồi", "Revoke"),
    ("users.tokens", "Mã truy cập API", "API tokens"),
    ("users.new_token", "Tạo mã API cho tôi", "Create an API token for me"),
    ("users.token_once", "Mã này chỉ hiện một lần, hãy lưu lại:", "This token is shown once; keep it now:"),
    ("role.admin", "Quản trị", "Administrator"),
    ("role.medical", "Y tế", "Medical"),
    ("role.manager", "Quản lý (chỉ xem)", "Manager (read-only)"),
    ("audit.title", "Nhật ký thao tác", "Audit log"),
    ("audit.user", "Người dùng", "User"),
    ("audit.action", "Thao tác", "Action"),
    ("audit.target", "Đối tượng", "Target"),
    ("common.yes", "Có", "Yes"),
    ("common.no", "Không", "No"),
    ("common.back", "Quay lại", "Back"),
    ("common.cancel", "Hủy", "Cancel"),
    ("common.actions", "Thao tác", "Actions"),
    ("common.time", "Thời gian", "Time"),
    ("common.person", "Người", "Person"),
    ("common.detail", "Chi tiết", "Detail"),
    ("error.title", "Không thực hiện được", "Could not be done"),
    ("error.not_found", "Không tìm thấy.", "Not found."),
    ("error.forbidden", "Tài khoản của bạn không có quyền này.", "Your account may not do this."),
    ("error.csrf", "Biểu mẫu đã hết hạn. Vui lòng tải lại trang và thử lại.", "The form expired. Reload the page and try again."),
    ("error.too_large", "Tệp hoặc nội dung gửi lên quá lớn.", "The upload is too large."),
    ("error.too_many", "Gửi quá nhiều lần trong thời gian ngắn. Vui lòng chờ một phút rồi thử lại.", "Too many requests in a short time. Please wait a minute and try again."),
    ("error.busy", "Hộp đang bận kiểm tra mật khẩu. Vui lòng thử lại sau vài giây.", "The box is busy checking passwords. Please try again in a few seconds."),
    ("error.storage", "Thẻ nhớ của hộp không ghi được (đầy hoặc hỏng): dữ liệu này chưa được lưu lên thẻ và có thể mất. Xem trang Tình trạng hộp và báo cán bộ kỹ thuật.", "The box's SD card takes no writes (full or failing): this was not saved to the card and may be lost. See the Box health page and call the technician."),
    ("error.internal", "Lỗi hệ thống; dữ liệu chưa được lưu. Vui lòng thử lại.", "Internal error; nothing was saved. Please try again."),
    ("error.login", "Vui lòng đăng nhập.", "Please log in."),
];

/// The text for `key` in `lang`.
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    match TEXTS.iter().find(|(k, _, _)| *k == key) {
        Some((_, vi, en)) => match lang {
            Lang::Vi => vi,
            Lang::En => en,
        },
        None => key,
    }
}

/// The first parts of the table's keys (`nav`, `alert`, `purpose`, …): a word on a page made of one of
/// them, a dot and a word is a key that was not translated (the walk of every page checks).
pub fn key_prefixes() -> std::collections::BTreeSet<&'static str> {
    TEXTS.iter().filter_map(|(k, _, _)| k.split_once('.').map(|(prefix, _)| prefix)).collect()
}

/// A text the box wrote in both languages (`tiếng Việt / English`, parts of a list each so, joined
/// by `, `) in `lang`: an alert's detail, its resolution note. A part in one language stays as it is.
pub fn in_lang(lang: Lang, text: &str) -> String {
    let part = |p: &str| match (p.split_once(" / "), lang) {
        (Some((vi, _)), Lang::Vi) => vi.to_owned(),
        (Some((_, en)), Lang::En) => en.to_owned(),
        (None, _) => p.to_owned(),
    };
    text.split(", ").map(part).collect::<Vec<_>>().join(", ")
}

/// A number with one decimal as the language writes it: `36,8` in Vietnamese, `36.8` in English.
pub fn decimal(lang: Lang, value: f64) -> String {
    let text = format!("{value:.1}");
    match lang {
        Lang::Vi => text.replace('.', ","),
        Lang::En => text,
    }
}

/// The text for a dynamic key (`status.released`, `sym.fever`, …).
pub fn td(lang: Lang, key: &str) -> String {
    match TEXTS.iter().find(|(k, _, _)| *k == key) {
        Some((_, vi, en)) => match lang {
            Lang::Vi => (*vi).to_owned(),
            Lang::En => (*en).to_owned(),
        },
        None => key.to_owned(),
    }
}

/// A signed span of time in days, hours and minutes: `+5 ngày 2 giờ`, `-3 phút`.
pub fn span(lang: Lang, seconds: i64) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let m = seconds.unsigned_abs() / 60;
    let (d, h, m) = (m / 1440, m / 60 % 24, m % 60);
    let units = match lang {
        Lang::Vi => ["ngày", "giờ", "phút"],
        Lang::En => ["d", "h", "min"],
    };
    let parts: Vec<String> =
        [d, h, m].iter().zip(units).filter(|(n, _)| **n > 0).map(|(n, u)| format!("{n} {u}")).collect();
    if parts.is_empty() {
        format!("{sign}0 {}", units[2])
    } else {
        format!("{sign}{}", parts.join(" "))
    }
}

/// The SMS reminder for a missed declaration: names its round (time and day), so a reminder read
/// late is not taken for the next round's.
pub fn reminder_sms(slot: chrono::NaiveDateTime, link: &str) -> String {
    format!(
        "Outpost: Ban chua khai bao y te dot {}. Vui long khai bao ngay tai {link}",
        slot.format("%H:%M %d/%m")
    )
}

/// A test result for the person, in one GSM part.
pub fn result_sms(
    round: u32,
    sampled_on: chrono::NaiveDate,
    result: outpost_sync::record::TestResult,
) -> String {
    let day = sampled_on.format("%d/%m");
    match result {
        outpost_sync::record::TestResult::Positive => format!(
            "Outpost: Ket qua xet nghiem lan {round} (lay mau {day}): DUONG TINH. Vui long o yen trong phong; nhan vien y te se lien he ban ngay."
        ),
        _ => format!("Outpost: Ket qua xet nghiem lan {round} (lay mau {day}): AM TINH."),
    }
}

/// A spot check's request, in one GSM part.
pub fn spot_check_sms(deadline: &str, link: &str) -> String {
    format!("Outpost: Kiem tra dot xuat. Truoc {deadline}, mo {link} va gui anh khuon mat cung vi tri.")
}

/// The answer to a declaration received by SMS.
pub fn declaration_reply_sms(temperature: f64, alerted: bool) -> String {
    if alerted {
        format!("Outpost: Da nhan khai bao ({temperature:.1} do C). Nhan vien y te se lien he ban ngay.")
    } else {
        format!("Outpost: Da nhan khai bao ({temperature:.1} do C). Cam on ban!")
    }
}

/// The answer to a declaration SMS whose values are impossible.
pub fn declaration_help_sms() -> String {
    "Outpost: Khai bao chua hop le. Cu phap: KB <nhiet do> [SPO2 <so>] [H S DH KT MV M TC K]. Vi du: KB 37.5 H".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_present() {
        let mut seen = std::collections::HashSet::new();
        for (k, vi, en) in TEXTS {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!vi.is_empty() && !en.is_empty(), "{k}");
        }
    }

    /// Every key the code names — `t(lang, "key")`, `td(…)`, a badge's — is in the table, and so is
    /// every key it builds from a prefix and a value (`status.{…}`) for every value the value can
    /// take. A missing key would show as the key itself.
    #[test]
    fn every_key_the_code_uses_is_in_the_table() {
        let known = |key: &str| TEXTS.iter().any(|(k, _, _)| *k == key);
        let mut missing = std::collections::BTreeSet::new();
        let mut named = std::collections::BTreeSet::new();
        for (file, text) in sources() {
            for key in literal_keys(&text) {
                named.insert(key.clone());
                if !known(&key) {
                    missing.insert(format!("{key} ({file})"));
                }
            }
            for prefix in built_prefixes(&text) {
                match values_of(&prefix) {
                    None => {
                        missing.insert(format!("{prefix}.* ({file}): list its values in this test"));
                    }
                    Some(values) => missing.extend(
                        values
                            .into_iter()
                            .map(|v| format!("{prefix}.{v}"))
                            .filter(|k| !known(k))
                            .map(|k| format!("{k} ({file})")),
                    ),
                }
            }
        }
        assert!(missing.is_empty(), "keys not in the table: {missing:#?}");
        assert!(named.len() > 250, "the scan found only {} keys: it no longer reads the code", named.len());
    }

    /// The crate's source files, with their paths.
    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).expect("dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source");
                    out.push((path.display().to_string(), text));
                }
            }
        }
        let mut out = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        assert!(out.len() > 50, "the sources were not found");
        out
    }

    /// The string literals given as a key: the second argument of `t(` and `td(`, the third of
    /// `badge(`, the argument of the error pages' `one(`.
    fn literal_keys(text: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for (call, skip) in [("t(", 1), ("td(", 1), ("badge(", 2), ("one(", 0)] {
            for (at, _) in text.match_indices(call) {
                let before = text[..at].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == ':' {
                    continue;
                }
                let mut rest = &text[at + call.len()..];
                for _ in 0..skip {
                    // Arguments before the key hold no comma of their own in this code.
                    let Some(comma) = rest.find(',') else { break };
                    rest = &rest[comma + 1..];
                }
                let rest = rest.trim_start();
                let Some(literal) = rest.strip_prefix('"') else { continue };
                let Some(end) = literal.find('"') else { continue };
                let key = &literal[..end];
                if key.contains('.')
                    && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c))
                {
                    keys.push(key.to_owned());
                }
            }
        }
        keys
    }

    /// The prefixes of keys built with `format!("<prefix>.{…}")`.
    fn built_prefixes(text: &str) -> Vec<String> {
        text.match_indices("format!(\"")
            .filter_map(|(at, m)| {
                let rest = &text[at + m.len()..];
                let end = rest.find(".{")?;
                let prefix = &rest[..end];
                let ok = !prefix.is_empty()
                    && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
                ok.then(|| prefix.to_owned())
            })
            .collect()
    }

    /// Every value a built key's last part can take, by prefix.
    fn values_of(prefix: &str) -> Option<Vec<String>> {
        use outpost_sync::record::{
            AlertKind, AlertState, BandState, Category, Gender, PersonStatus, Role, SpotCheckState,
            SpotReview, Symptom, TestResult,
        };
        fn all<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> Vec<String> {
            values.iter().map(|v| name(*v).to_owned()).collect()
        }
        use crate::app::{checkin, outbox};
        Some(match prefix {
            "status" => all(&PersonStatus::ALL, PersonStatus::as_str),
            "category" => all(&Category::ALL, Category::as_str),
            "gender" => all(&Gender::ALL, Gender::as_str),
            "sym" => all(&Symptom::ALL, Symptom::as_str),
            "alert" => all(&AlertKind::ALL, AlertKind::as_str),
            "state" => all(&AlertState::ALL, AlertState::as_str),
            "band" => all(&BandState::ALL, BandState::as_str),
            "role" => all(&Role::ALL, Role::as_str),
            "test" => all(&TestResult::ALL, TestResult::as_str),
            "spot.state" => all(&SpotCheckState::ALL, SpotCheckState::as_str),
            "spot.review" => all(&SpotReview::ALL, SpotReview::as_str),
            "purpose" => all(&outbox::Purpose::ALL, outbox::Purpose::as_str),
            "outbox" => all(&outbox::OutboxState::ALL, outbox::OutboxState::as_str),
            "checkin" => all(&checkin::Direction::ALL, checkin::Direction::as_str),
            "checkin.purpose" => {
                checkin::PURPOSES.iter().chain(&["quarantined"]).map(|p| (*p).to_owned()).collect()
            }
            "problem" => crate::platform::system::PROBLEM_CODES.iter().map(|p| (*p).to_owned()).collect(),
            "act" => crate::base::audit::ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
            "stick" => {
                use crate::platform::stick::{Action, State};
                let actions = Action::ALL.iter().map(|a| a.as_str());
                actions.chain(State::ALL.iter().map(|s| s.as_str())).map(str::to_owned).collect()
            }
            "presence" => {
                use outpost_ble::presence::State;
                all(&[State::Present, State::Unseen, State::Away], crate::app::presence::state_str)
            }
            _ => return None,
        })
    }

    /// One accent style: the marks of "oa", "oe" and "uy" ending a syllable on the first vowel, as
    /// the current style (and the district forms) write them: hòa, tọa, xóa, khóa, thủy.
    #[test]
    fn accents_are_placed_in_one_style() {
        let old = ["oà", "oá", "oả", "oã", "oạ", "oè", "oé", "oẻ", "oẽ", "oẹ", "uỳ", "uý", "uỷ", "uỹ", "uỵ"];
        for (key, vi, _) in TEXTS {
            for word in vi.split(|c: char| !c.is_alphabetic()) {
                let lower = word.to_lowercase();
                // Only where the pair ends the syllable ("thoại", "khoản" are the same in both styles).
                // After "q" the "u" is part of the consonant ("quý" is the same in both styles).
                if old.iter().any(|o| lower.ends_with(o) && !lower.ends_with(&format!("q{o}"))) {
                    panic!("{key}: \"{word}\" in the old style");
                }
            }
        }
    }

    #[test]
    fn texts_in_both_languages_are_shown_in_one() {
        let detail = "SpO2 90%, khó thở / shortness of breath, 38.6 °C";
        assert_eq!(in_lang(Lang::Vi, detail), "SpO2 90%, khó thở, 38.6 °C");
        assert_eq!(in_lang(Lang::En, detail), "SpO2 90%, shortness of breath, 38.6 °C");
        assert_eq!(in_lang(Lang::En, "vòng A: pin 9% / band A: battery 9%"), "band A: battery 9%");
    }

    #[test]
    fn decimals_are_written_as_each_language_writes_them() {
        assert_eq!(decimal(Lang::Vi, 36.84), "36,8");
        assert_eq!(decimal(Lang::En, 36.84), "36.8");
    }

    #[test]
    fn spans_read_in_days_hours_and_minutes() {
        assert_eq!(span(Lang::Vi, 5 * 86_400 + 2 * 3_600), "+5 ngày 2 giờ");
        assert_eq!(span(Lang::En, -180), "-3 min");
        assert_eq!(span(Lang::Vi, 30), "+0 phút");
    }

    #[test]
    fn reminder_fits_one_gsm_part() {
        let link = format!("https://hoa-vang-01.quangnam.outpost.vn/d/{}", "a".repeat(32));
        let slot =
            chrono::NaiveDate::from_ymd_opt(2026, 12, 4).and_then(|d| d.and_hms_opt(21, 0, 0)).expect("slot");
        let sms = reminder_sms(slot, &link);
        assert!(sms.contains("dot 21:00 04/12"), "{sms}");
        assert!(sms.is_ascii());
        assert!(sms.len() <= 160, "{} characters", sms.len());
    }
}
