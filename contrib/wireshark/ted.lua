-- Wireshark/tshark dissector for TED v3 (Tunnel Endpoint Discovery), docs/WIRE-FORMAT.md.
--
-- Load it with:  tshark -X lua_script:contrib/wireshark/ted.lua -r capture.pcap
-- or copy it into Wireshark's personal plugins folder (Help > About > Folders).
--
-- It takes UDP port 500 over from the ISAKMP dissector, calls that dissector first (so every
-- isakmp.* field stays), and for exchange types 240 (probe), 241 (response) and 242
-- (challenge) adds a TED tree: the exchange named and every payload decoded — Vendor ID (13),
-- Identification (5), TED Packet Summary (240), TED Response (241), TED Padding (242), TED
-- Cookie (243; ted's own are a time slot and a MAC).

local ted = Proto("ted", "Tunnel Endpoint Discovery v3")

local exchange_names = { [240] = "TED probe", [241] = "TED response", [242] = "TED challenge" }
local payload_names = { [0] = "None", [5] = "Identification", [13] = "Vendor ID", [240] = "TED Packet Summary", [241] = "TED Response",
                        [242] = "TED Padding", [243] = "TED Cookie" }

local f = ted.fields
f.icookie = ProtoField.bytes("ted.initiator_cookie", "Initiator cookie")
f.rcookie = ProtoField.bytes("ted.responder_cookie", "Responder cookie")
f.exchange = ProtoField.uint8("ted.exchange", "Exchange type", base.DEC, exchange_names)
f.length = ProtoField.uint32("ted.length", "Length")
f.payload = ProtoField.uint8("ted.payload", "Payload", base.DEC, payload_names)
f.capabilities = ProtoField.uint32("ted.capabilities", "Capabilities", base.HEX)
f.id_type = ProtoField.uint8("ted.id.type", "ID type")
f.id_port = ProtoField.uint16("ted.id.port", "ID port")
f.id_addr4 = ProtoField.ipv4("ted.id.address", "ID address")
f.id_addr6 = ProtoField.ipv6("ted.id.address6", "ID address")
f.id_mask4 = ProtoField.ipv4("ted.id.mask", "ID mask")
f.id_mask6 = ProtoField.ipv6("ted.id.mask6", "ID mask")
f.id_proto = ProtoField.uint8("ted.id.protocol", "ID protocol")
f.s_version = ProtoField.uint8("ted.summary.ip_version", "IP version")
f.s_proto = ProtoField.uint8("ted.summary.protocol", "Protocol")
f.s_flags = ProtoField.uint8("ted.summary.flags", "Port flags", base.HEX)
f.s_sport = ProtoField.uint16("ted.summary.source_port", "Source port (ICMP type)")
f.s_dport = ProtoField.uint16("ted.summary.destination_port", "Destination port (ICMP code)")
f.s_src4 = ProtoField.ipv4("ted.summary.source", "Source")
f.s_dst4 = ProtoField.ipv4("ted.summary.destination", "Destination")
f.s_src6 = ProtoField.ipv6("ted.summary.source6", "Source")
f.s_dst6 = ProtoField.ipv6("ted.summary.destination6", "Destination")
f.r_count = ProtoField.uint8("ted.response.entries", "Entries")
f.e_proto = ProtoField.uint8("ted.entry.protocol", "Protocol (0 = any)")
f.e_rports = ProtoField.string("ted.entry.responder_ports", "Responder-side ports")
f.e_iports = ProtoField.string("ted.entry.initiator_ports", "Initiator-side ports")
f.e_raddr4 = ProtoField.ipv4("ted.entry.responder_address", "Responder-side address")
f.e_rmask4 = ProtoField.ipv4("ted.entry.responder_mask", "Responder-side mask")
f.e_iaddr4 = ProtoField.ipv4("ted.entry.initiator_address", "Initiator-side address")
f.e_imask4 = ProtoField.ipv4("ted.entry.initiator_mask", "Initiator-side mask")
f.e_raddr6 = ProtoField.ipv6("ted.entry.responder_address6", "Responder-side address")
f.e_rmask6 = ProtoField.ipv6("ted.entry.responder_mask6", "Responder-side mask")
f.e_iaddr6 = ProtoField.ipv6("ted.entry.initiator_address6", "Initiator-side address")
f.e_imask6 = ProtoField.ipv6("ted.entry.initiator_mask6", "Initiator-side mask")
f.cookie = ProtoField.bytes("ted.cookie", "Cookie")
f.cookie_slot = ProtoField.uint64("ted.cookie.slot", "Time slot")
f.cookie_mac = ProtoField.bytes("ted.cookie.mac", "MAC")

local function address(tree, buffer, offset, family, field4, field6)
  if family == 6 then tree:add(field6, buffer(offset, 16)); return offset + 16 end
  tree:add(field4, buffer(offset, 4)); return offset + 4
end

local function identification(tree, body)
  local id_type = body(0, 1):uint()
  tree:add(f.id_type, body(0, 1))
  tree:add(f.id_proto, body(1, 1))
  tree:add(f.id_port, body(2, 2))
  if id_type == 1 and body:len() >= 8 then tree:add(f.id_addr4, body(4, 4))
  elseif id_type == 5 and body:len() >= 20 then tree:add(f.id_addr6, body(4, 16))
  elseif id_type == 4 and body:len() >= 12 then tree:add(f.id_addr4, body(4, 4)); tree:add(f.id_mask4, body(8, 4))
  elseif id_type == 6 and body:len() >= 36 then tree:add(f.id_addr6, body(4, 16)); tree:add(f.id_mask6, body(20, 16)) end
end

local function summary(tree, body)
  if body:len() < 32 then return end
  local family = body(17, 1):uint()
  tree:add(f.s_version, body(17, 1))
  tree:add(f.s_proto, body(18, 1))
  tree:add(f.s_flags, body(19, 1))
  tree:add(f.s_sport, body(20, 2))
  tree:add(f.s_dport, body(22, 2))
  if family == 6 and body:len() >= 56 then
    tree:add(f.s_src6, body(24, 16)); tree:add(f.s_dst6, body(40, 16))
  else
    tree:add(f.s_src4, body(24, 4)); tree:add(f.s_dst4, body(28, 4))
  end
end

local function response(tree, body)
  if body:len() < 4 then return end
  local family, count = body(1, 1):uint(), body(2, 1):uint()
  tree:add(f.r_count, body(2, 1))
  local size = family == 6 and 76 or 28
  for i = 0, count - 1 do
    local at = 4 + i * size
    if at + size > body:len() then break end
    local entry = tree:add(ted, body(at, size), "Entry " .. (i + 1))
    entry:add(f.e_proto, body(at, 1))
    entry:add(f.e_rports, body(at + 4, 4), body(at + 4, 2):uint() .. "-" .. body(at + 6, 2):uint())
    entry:add(f.e_iports, body(at + 8, 4), body(at + 8, 2):uint() .. "-" .. body(at + 10, 2):uint())
    local o = at + 12
    o = address(entry, body, o, family, f.e_raddr4, f.e_raddr6)
    o = address(entry, body, o, family, f.e_rmask4, f.e_rmask6)
    o = address(entry, body, o, family, f.e_iaddr4, f.e_iaddr6)
    address(entry, body, o, family, f.e_imask4, f.e_imask6)
  end
end

-- Opaque to everyone but the responder that made it; ted's are 16 bytes: slot, then MAC.
local function cookie(tree, body)
  tree:add(f.cookie, body())
  if body:len() == 16 then tree:add(f.cookie_slot, body(0, 8)); tree:add(f.cookie_mac, body(8, 8)) end
end

local function dissect(buffer, pinfo, root)
  if buffer:len() < 28 then return false end
  local exchange = buffer(18, 1):uint()
  if buffer(17, 1):uint() ~= 0x10 or not exchange_names[exchange] then return false end
  pinfo.cols.protocol = "TED"
  pinfo.cols.info = exchange_names[exchange]
  local tree = root:add(ted, buffer(), "TED v3, " .. exchange_names[exchange])
  tree:add(f.icookie, buffer(0, 8))
  tree:add(f.rcookie, buffer(8, 8))
  tree:add(f.exchange, buffer(18, 1))
  tree:add(f.length, buffer(24, 4))
  local next_payload, offset, seen = buffer(16, 1):uint(), 28, 0
  while next_payload ~= 0 and offset + 4 <= buffer:len() and seen < 16 do
    local length = buffer(offset + 2, 2):uint()
    if length < 4 or offset + length > buffer:len() then break end
    local item = tree:add(f.payload, buffer(offset, length), next_payload)
    local body = buffer(offset + 4, length - 4):tvb()
    if next_payload == 13 and length == 24 then item:add(f.capabilities, body(16, 4))
    elseif next_payload == 5 and length >= 8 then identification(item, body)
    elseif next_payload == 240 then summary(item, body)
    elseif next_payload == 241 then response(item, body)
    elseif next_payload == 243 and length > 4 then cookie(item, body) end
    next_payload = buffer(offset, 1):uint()
    offset = offset + length
    seen = seen + 1
  end
  return true
end

local udp_port = DissectorTable.get("udp.port")
local isakmp = udp_port:get_dissector(500)

function ted.dissector(buffer, pinfo, tree)
  if isakmp then isakmp:call(buffer, pinfo, tree) end
  dissect(buffer, pinfo, tree)
end

udp_port:add(500, ted)
