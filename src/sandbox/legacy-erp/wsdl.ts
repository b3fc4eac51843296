// The WSDL 1.1 contract of the legacy ERP's SOAP 1.1 service: document/literal style, three
// operations (PostSalesOrder, CancelSalesOrder, GetStockLevels), types in an embedded XML Schema.

export const LEGACY_ERP_NAMESPACE = 'urn:middlemart:sandbox:legacy-erp:v1';
export const SOAP_ENVELOPE_NAMESPACE = 'http://schemas.xmlsoap.org/soap/envelope/';
export const LEGACY_ERP_OPERATIONS = [
  'PostSalesOrder',
  'CancelSalesOrder',
  'GetStockLevels',
] as const;
export type LegacyErpOperation = (typeof LEGACY_ERP_OPERATIONS)[number];

/** The SOAPAction value of an operation (clients send it quoted in the SOAPAction header). */
export function soapActionOf(operation: LegacyErpOperation): string {
  return `${LEGACY_ERP_NAMESPACE}/${operation}`;
}

function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** Renders the WSDL with the service endpoint at `endpointUrl` (e.g. http://127.0.0.1:7102/soap). */
export function renderWsdl(endpointUrl: string): string {
  const ns = LEGACY_ERP_NAMESPACE;
  const operation = (name: LegacyErpOperation): string => `
    <wsdl:operation name="${name}">
      <soap:operation soapAction="${soapActionOf(name)}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="ValidationFault"><soap:fault name="ValidationFault" use="literal"/></wsdl:fault>
    </wsdl:operation>`;
  const portOperation = (name: LegacyErpOperation): string => `
    <wsdl:operation name="${name}">
      <wsdl:input message="tns:${name}Input"/>
      <wsdl:output message="tns:${name}Output"/>
      <wsdl:fault name="ValidationFault" message="tns:ValidationFault"/>
    </wsdl:operation>`;
  const messages = LEGACY_ERP_OPERATIONS.map(
    (name) => `
  <wsdl:message name="${name}Input"><wsdl:part name="parameters" element="tns:${name}Request"/></wsdl:message>
  <wsdl:message name="${name}Output"><wsdl:part name="parameters" element="tns:${name}Response"/></wsdl:message>`,
  ).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="LegacyErpService"
  targetNamespace="${ns}"
  xmlns:tns="${ns}"
  xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
  xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <wsdl:types>
    <xs:schema targetNamespace="${ns}" elementFormDefault="qualified">
      <xs:complexType name="OrderLine">
        <xs:sequence>
          <xs:element name="Sku" type="xs:string"/>
          <xs:element name="Quantity" type="xs:positiveInteger"/>
          <xs:element name="UnitPrice" type="xs:decimal"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="PostSalesOrderRequest">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="ExternalReference" type="xs:string"/>
            <xs:element name="OrderDate" type="xs:date" minOccurs="0"/>
            <xs:element name="CustomerNumber" type="xs:string" minOccurs="0"/>
            <xs:element name="Currency" type="xs:string"/>
            <xs:element name="Warehouse" type="xs:string" minOccurs="0"/>
            <xs:element name="Lines">
              <xs:complexType>
                <xs:sequence>
                  <xs:element name="Line" type="tns:OrderLine" maxOccurs="unbounded"/>
                </xs:sequence>
              </xs:complexType>
            </xs:element>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="PostSalesOrderResponse">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="OrderNumber" type="xs:string"/>
            <xs:element name="ExternalReference" type="xs:string"/>
            <xs:element name="Status" type="xs:string"/>
            <xs:element name="Total" type="xs:decimal"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="CancelSalesOrderRequest">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="ExternalReference" type="xs:string"/>
            <xs:element name="Reason" type="xs:string" minOccurs="0"/>
            <xs:element name="Lines" minOccurs="0">
              <xs:complexType>
                <xs:sequence>
                  <xs:element name="Line" maxOccurs="unbounded">
                    <xs:complexType>
                      <xs:sequence>
                        <xs:element name="Sku" type="xs:string"/>
                        <xs:element name="RemainingQuantity" type="xs:nonNegativeInteger"/>
                      </xs:sequence>
                    </xs:complexType>
                  </xs:element>
                </xs:sequence>
              </xs:complexType>
            </xs:element>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="CancelSalesOrderResponse">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="OrderNumber" type="xs:string"/>
            <xs:element name="Status" type="xs:string"/>
            <xs:element name="Changed" type="xs:boolean"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="GetStockLevelsRequest">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="Warehouse" type="xs:string" minOccurs="0"/>
            <xs:element name="Sku" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="GetStockLevelsResponse">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="StockLevel" minOccurs="0" maxOccurs="unbounded">
              <xs:complexType>
                <xs:sequence>
                  <xs:element name="Sku" type="xs:string"/>
                  <xs:element name="Warehouse" type="xs:string"/>
                  <xs:element name="OnHand" type="xs:int"/>
                  <xs:element name="Allocated" type="xs:int"/>
                  <xs:element name="Available" type="xs:int"/>
                </xs:sequence>
              </xs:complexType>
            </xs:element>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="ValidationErrors">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="Error" maxOccurs="unbounded">
              <xs:complexType>
                <xs:simpleContent>
                  <xs:extension base="xs:string">
                    <xs:attribute name="path" type="xs:string"/>
                    <xs:attribute name="code" type="xs:string"/>
                  </xs:extension>
                </xs:simpleContent>
              </xs:complexType>
            </xs:element>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
    </xs:schema>
  </wsdl:types>${messages}
  <wsdl:message name="ValidationFault"><wsdl:part name="fault" element="tns:ValidationErrors"/></wsdl:message>
  <wsdl:portType name="LegacyErpPortType">${LEGACY_ERP_OPERATIONS.map(portOperation).join('')}
  </wsdl:portType>
  <wsdl:binding name="LegacyErpSoapBinding" type="tns:LegacyErpPortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>${LEGACY_ERP_OPERATIONS.map(operation).join('')}
  </wsdl:binding>
  <wsdl:service name="LegacyErpService">
    <wsdl:port name="LegacyErpSoapPort" binding="tns:LegacyErpSoapBinding">
      <soap:address location="${escapeAttribute(endpointUrl)}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
`;
}
